"""``taskgate variables``: manage variables (global or team-owned)."""

from __future__ import annotations

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, console, fail, print_json, print_table

app = typer.Typer(help="Variables.", no_args_is_help=True)


@app.command("set")
def set_(
    key: str,
    value: str,
    description: str | None = typer.Option(None),
    team: str | None = typer.Option(None, help="Owning team; none: global."),
) -> None:
    """Create or replace a variable."""
    backend().put_variable(key, value, description, team)
    console.print(f"variable {key} set", highlight=False)


@app.command()
def get(key: str, json_output: bool = JsonOption) -> None:
    """Print a variable's value."""
    variable = backend().get_variable(key)
    if json_output:
        print_json(variable)
        return
    if "value" not in variable:  # the control API shows values to admins only
        raise fail(f"the value of variable {key!r} is shown to admin operators only")
    typer.echo(variable["value"] if variable["value"] is not None else "")


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List variables (keys, teams and descriptions; values only with --json)."""
    rows = backend().list_variables()
    if json_output:
        print_json(rows)
        return
    print_table(
        "Variables", ["key", "team", "description"],
        [(v["key"], v["team"] or "-", v["description"]) for v in rows],
    )


@app.command()
def delete(key: str) -> None:
    """Delete a variable."""
    if not backend().delete_variable(key):
        raise fail(f"variable {key!r} not found")
    console.print(f"variable {key} deleted", highlight=False)
