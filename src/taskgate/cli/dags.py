"""``taskgate dags``: register DAGs (and their team)."""

from __future__ import annotations

import typer

from taskgate.cli.common import JsonOption, console, print_json, print_table, with_session
from taskgate.services import control

app = typer.Typer(help="DAGs.", no_args_is_help=True)


@app.command()
def add(
    dag_id: str,
    team: str | None = typer.Option(None, help="Team owning the DAG (access to data)."),
) -> None:
    """Register a DAG."""
    dag = with_session(lambda session, _rt: control.add_dag(session, dag_id, team=team))
    console.print(f"DAG {dag.dag_id} (team: {dag.team or '-'})", highlight=False)


@app.command("list")
def list_(json_output: bool = JsonOption) -> None:
    """List DAGs."""
    dags = with_session(lambda session, _rt: control.list_dags(session))
    if json_output:
        print_json([{"dag_id": d.dag_id, "team": d.team} for d in dags])
        return
    print_table("DAGs", ["dag_id", "team"], [(d.dag_id, d.team or "-") for d in dags])
