"""``taskgate variables``: manage variables (global or team-owned)."""

from __future__ import annotations

import typer

from taskgate.cli.common import JsonOption, console, fail, print_json, print_table, with_session
from taskgate.services import variables, views

app = typer.Typer(help="Variables.", no_args_is_help=True)


@app.command("set")
def set_(
    key: str,
    value: str,
    description: str | None = typer.Option(None),
    team: str | None = typer.Option(None, help="Owning team; none: global."),
) -> None:
    """Create or replace a variable."""
    with_session(
        lambda session, rt: variables.put(
            session, rt.secrets, key, value, description=description, team=team
        )
    )
    console.print(f"variable {key} set", highlight=False)


@app.command()
def get(key: str, json_output: bool = JsonOption) -> None:
    """Print a variable's value."""
    variable = with_session(lambda session, rt: variables.get(session, rt.secrets, key))
    if json_output:
        print_json(views.variable(variable))
    else:
        typer.echo(variable.value if variable.value is not None else "")


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List variables (keys, teams and descriptions; values only with --json)."""
    rows = with_session(lambda session, rt: variables.list_all(session, rt.secrets))
    if json_output:
        print_json([views.variable(v) for v in rows])
        return
    print_table(
        "Variables", ["key", "team", "description"], [(v.key, v.team or "-", v.description) for v in rows]
    )


@app.command()
def delete(key: str) -> None:
    """Delete a variable."""
    if not with_session(lambda session, _rt: variables.delete_key(session, key)):
        raise fail(f"variable {key!r} not found")
    console.print(f"variable {key} deleted", highlight=False)
