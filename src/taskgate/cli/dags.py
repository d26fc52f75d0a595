"""``taskgate dags``: register DAGs (and their team), and declare what their tasks may read."""

from __future__ import annotations

from typing import Any

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, console, print_json, print_table
from taskgate.wire.http import TokenBinding

app = typer.Typer(help="DAGs.", no_args_is_help=True)


@app.command()
def add(
    dag_id: str,
    team: str | None = typer.Option(None, help="Team owning the DAG (access to data)."),
    allow_variable: list[str] = typer.Option(
        [], "--allow-variable", help="A variable key (or glob, 'etl_*') its tasks may read."
    ),
    allow_connection: list[str] = typer.Option(
        [], "--allow-connection", help="A connection id (or glob) its tasks may read."
    ),
    allow_xcom_from: list[str] = typer.Option(
        [], "--allow-xcom-from", help="Another DAG whose XComs its tasks may read."
    ),
    task: str | None = typer.Option(
        None, "--task", help="Declare for this task only (default: every task of the DAG)."
    ),
    token_binding: TokenBinding | None = typer.Option(
        None, "--token-binding",
        help="dpop: its tasks start only with a DPoP proof, so their execution tokens are "
        "bound to the worker's key; bearer: unbound tokens too. Unset: kept as it was "
        "(new DAG: TASKGATE_TOKEN_BINDING).",
    ),
) -> None:
    """Register a DAG. With --allow-... (or --task), also declare what its tasks (or one
    task) may read, replacing what was declared for them: a DAG with a declaration reads
    only what it declares."""
    api = backend()
    dag = api.add_dag(dag_id, team, token_binding.value if token_binding else None)
    console.print(f"DAG {dag['dag_id']} (team: {dag['team'] or '-'}, token binding: "
                  f"{dag['token_binding'] or 'server default'})", highlight=False)
    if allow_variable or allow_connection or allow_xcom_from or task is not None:
        declared = api.declare_dag_access(
            dag_id, task, allow_variable, allow_connection, allow_xcom_from
        )
        _print_policy(declared)


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List DAGs."""
    dags = backend().list_dags()
    if json_output:
        print_json(dags)
        return
    print_table("DAGs", ["dag_id", "team", "token binding"], [
        (d["dag_id"], d["team"] or "-", d.get("token_binding") or "server default") for d in dags
    ])


@app.command()
def policy(
    dag_id: str,
    clear: bool = typer.Option(
        False, "--clear", help="Remove the declaration: the team rule alone applies again."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Show what the DAG's tasks may read (its declared access)."""
    api = backend()
    shown = api.clear_dag_access(dag_id) if clear else api.dag_access(dag_id)
    if json_output:
        print_json(shown)
        return
    _print_policy(shown)


def _print_policy(access: dict[str, Any]) -> None:
    if not access["declared"]:
        console.print(
            f"DAG {access['dag_id']}: no declared access (its team's and global variables "
            "and connections, its own XComs)",
            highlight=False,
        )
        return
    rows = [("(every task)", access)] + sorted(access["tasks"].items())
    print_table(
        f"Declared access of DAG {access['dag_id']}",
        ["task", "variables", "connections", "xcom from"],
        [
            (task, _listed(lines["variables"]), _listed(lines["connections"]),
             _listed(lines["xcom_from"]))
            for task, lines in rows
        ],
    )


def _listed(entries: list[str]) -> str:
    return ", ".join(entries) or "-"
