"""``taskgate operators``: who may use the control API (their keys, roles and teams)."""

from __future__ import annotations

import typer

from taskgate.cli.common import JsonOption, console, print_json, print_table, with_session
from taskgate.services import operators, views
from taskgate.services.operators import Role

app = typer.Typer(help="Operators of the control API and their keys.", no_args_is_help=True)


@app.command()
def add(
    name: str,
    role: Role = typer.Option(..., "--role", help="reader, operator or admin."),
    teams: list[str] = typer.Option(
        [], "--team", help="Act only on DAGs of this team (repeat for several; none: all)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Make an operator and print its key, once (only its hash is stored)."""
    made = with_session(lambda session, _rt: operators.add_operator(session, name, role, teams))
    if json_output:
        print_json(views.new_operator(made))
        return
    console.print(f"operator {name} ({made.operator.role}, teams: "
                  f"{', '.join(made.operator.teams) or 'all'})", highlight=False)
    console.print("key (shown once, keep it secret):", highlight=False)
    typer.echo(made.key)


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List operators (never their keys)."""
    found = with_session(lambda session, _rt: operators.list_operators(session))
    if json_output:
        print_json([views.operator(o) for o in found])
        return
    print_table("Operators", ["name", "role", "teams", "created", "revoked"], [
        (o.name, o.role, ", ".join(o.teams) or "all", o.created_at.isoformat(timespec="seconds"),
         o.revoked_at.isoformat(timespec="seconds") if o.revoked_at else "-")
        for o in found
    ])


@app.command()
def revoke(name: str) -> None:
    """Refuse the operator's key from its next request on (every replica)."""
    revoked = with_session(lambda session, _rt: operators.revoke_operator(session, name))
    console.print(f"operator {revoked.name} revoked", highlight=False)
