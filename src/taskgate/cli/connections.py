"""``taskgate connections``: manage connections (global or team-owned)."""

from __future__ import annotations

import typer

from taskgate.cli.common import JsonOption, console, fail, print_json, print_table, with_session
from taskgate.services import connections, views

app = typer.Typer(help="Connections.", no_args_is_help=True)


@app.command()
def add(
    conn_id: str,
    uri: str = typer.Option(..., help="conn-type://login:password@host:port/schema?extra=1"),
    team: str | None = typer.Option(None, help="Owning team; none: global."),
) -> None:
    """Create or replace a connection from a URI."""

    async def work(session, rt):  # type: ignore[no-untyped-def]
        fields = connections.parse_uri(uri)
        return await connections.put(session, rt.secrets, conn_id, fields, team=team)

    connection = with_session(work)
    console.print(
        f"connection {connection.conn_id} ({connection.fields.conn_type}) saved", highlight=False
    )


@app.command()
def get(
    conn_id: str,
    json_output: bool = JsonOption,
    reveal: bool = typer.Option(False, help="Show the password instead of ***."),
) -> None:
    """Show a connection."""
    connection = with_session(lambda session, rt: connections.get(session, rt.secrets, conn_id))
    data = views.connection(connection, reveal=reveal)
    if json_output:
        print_json(data)
        return
    print_table(f"Connection {conn_id}", ["field", "value"], list(data.items()))


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List connections (passwords masked)."""
    rows = with_session(lambda session, rt: connections.list_all(session, rt.secrets))
    if json_output:
        print_json([views.connection(c) for c in rows])
        return
    print_table(
        "Connections",
        ["conn_id", "type", "host", "team"],
        [(c.conn_id, c.fields.conn_type, c.fields.host, c.team or "-") for c in rows],
    )


@app.command()
def delete(conn_id: str) -> None:
    """Delete a connection."""
    if not with_session(lambda session, _rt: connections.delete_id(session, conn_id)):
        raise fail(f"connection {conn_id!r} not found")
    console.print(f"connection {conn_id} deleted", highlight=False)
