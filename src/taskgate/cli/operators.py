"""``taskgate operators``: who may use the control API (their keys, roles and teams)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, console, print_json, print_table

app = typer.Typer(help="Operators of the control API and their keys.", no_args_is_help=True)


class Role(str, Enum):
    """``taskgate.services.operators.Role``'s values, without importing the services."""

    READER = "reader"
    OPERATOR = "operator"
    ADMIN = "admin"


def _when(value: str | None) -> str:
    return datetime.fromisoformat(value).isoformat(timespec="seconds") if value else "-"


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
    made = backend().add_operator(name, role.value, teams)
    if json_output:
        print_json(made)
        return
    console.print(f"operator {name} ({made['role']}, teams: "
                  f"{', '.join(made['teams']) or 'all'})", highlight=False)
    console.print("key (shown once, keep it secret):", highlight=False)
    typer.echo(made["key"])


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List operators (never their keys)."""
    found = backend().list_operators()
    if json_output:
        print_json(found)
        return
    print_table("Operators", ["name", "role", "teams", "created", "revoked"], [
        (o["name"], o["role"], ", ".join(o["teams"]) or "all", _when(o["created_at"]),
         _when(o["revoked_at"]))
        for o in found
    ])


@app.command()
def revoke(name: str) -> None:
    """Refuse the operator's key from its next request on (every replica)."""
    revoked = backend().revoke_operator(name)
    console.print(f"operator {revoked['name']} revoked", highlight=False)
