"""``taskgate connections``: manage connections (global or team-owned)."""

from __future__ import annotations

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, console, fail, print_json, print_table

app = typer.Typer(help="Connections.", no_args_is_help=True)


@app.command()
def add(
    conn_id: str,
    uri: str = typer.Option(..., help="conn-type://login:password@host:port/schema?extra=1"),
    team: str | None = typer.Option(None, help="Owning team; none: global."),
) -> None:
    """Create or replace a connection from a URI."""
    connection = backend().put_connection(conn_id, uri, team)
    console.print(
        f"connection {connection['conn_id']} ({connection['conn_type']}) saved", highlight=False
    )


@app.command()
def get(
    conn_id: str,
    json_output: bool = JsonOption,
    reveal: bool = typer.Option(False, help="Show the password instead of ***."),
) -> None:
    """Show a connection."""
    data = backend().get_connection(conn_id, reveal)
    if json_output:
        print_json(data)
        return
    print_table(f"Connection {conn_id}", ["field", "value"], list(data.items()))


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List connections (passwords masked)."""
    rows = backend().list_connections()
    if json_output:
        print_json(rows)
        return
    print_table(
        "Connections",
        ["conn_id", "type", "host", "team"],
        [(c["conn_id"], c["conn_type"], c["host"], c["team"] or "-") for c in rows],
    )


@app.command()
def delete(conn_id: str) -> None:
    """Delete a connection."""
    if not backend().delete_connection(conn_id):
        raise fail(f"connection {conn_id!r} not found")
    console.print(f"connection {conn_id} deleted", highlight=False)
