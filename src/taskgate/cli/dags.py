"""``taskgate dags``: register DAGs (and their team)."""

from __future__ import annotations

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, console, print_json, print_table

app = typer.Typer(help="DAGs.", no_args_is_help=True)


@app.command()
def add(
    dag_id: str,
    team: str | None = typer.Option(None, help="Team owning the DAG (access to data)."),
) -> None:
    """Register a DAG."""
    dag = backend().add_dag(dag_id, team)
    console.print(f"DAG {dag['dag_id']} (team: {dag['team'] or '-'})", highlight=False)


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List DAGs."""
    dags = backend().list_dags()
    if json_output:
        print_json(dags)
        return
    print_table("DAGs", ["dag_id", "team"], [(d["dag_id"], d["team"] or "-") for d in dags])
