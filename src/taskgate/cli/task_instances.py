"""``taskgate ti``: list, show and queue task instances."""

from __future__ import annotations

from enum import Enum

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, console, fail, parse_ti_id, print_json, print_table

app = typer.Typer(help="Task instances.", no_args_is_help=True)


@app.command("list")
def list_(
    dag_id: str | None = typer.Option(None, "--dag-id"),
    state: str | None = typer.Option(None, "--state"),
    json_output: bool = JsonOption,
) -> None:
    """List task instances, optionally of one DAG or in one state."""
    tis = backend().list_task_instances(dag_id, state)
    if json_output:
        print_json(tis)
        return
    rows = [
        (ti["id"], ti["dag_id"], ti["run_id"], ti["task_id"], ti["state"], ti["try_number"])
        for ti in tis
    ]
    print_table("Task instances", ["id", "dag_id", "run_id", "task_id", "state", "try"], rows)


@app.command()
def show(ti_id: str, json_output: bool = JsonOption) -> None:
    """Show one task instance, with its rendered template fields and token standing."""
    data = backend().show_task_instance(str(parse_ti_id(ti_id)))
    if json_output:
        print_json(data)
        return
    print_table(f"Task instance {data['id']}", ["field", "value"], list(data.items()))


class WorkloadFormat(str, Enum):
    TASKGATE = "taskgate"
    AIRFLOW = "airflow"


@app.command()
def queue(
    ti_id: str,
    json_output: bool = JsonOption,
    output_format: WorkloadFormat = typer.Option(
        WorkloadFormat.TASKGATE,
        "--format",
        help="airflow: print an Airflow ExecuteTask workload (JSON) for "
        "`python -m airflow.sdk.execution_time.execute_workload --json-string`.",
    ),
    dag_rel_path: str | None = typer.Option(
        None, "--dag-rel-path", help="With --format airflow: the DAG file, relative to its bundle."
    ),
    bundle_name: str | None = typer.Option(
        None, "--bundle-name", help="With --format airflow: the worker's DAG bundle (e.g. dags-folder)."
    ),
    bundle_version: str | None = typer.Option(
        None, "--bundle-version", help="With --format airflow: the bundle version, if it has one."
    ),
) -> None:
    """Queue a task instance and print the workload token that starts it."""
    ident = str(parse_ti_id(ti_id))
    airflow = None
    if output_format is WorkloadFormat.AIRFLOW:
        if not (dag_rel_path and bundle_name):
            raise fail("--format airflow needs --dag-rel-path and --bundle-name", 2)
        airflow = {"dag_rel_path": dag_rel_path, "bundle_name": bundle_name,
                   "bundle_version": bundle_version}
    queued = backend().queue(ident, airflow)
    if airflow is not None or json_output:
        print_json(queued)
        return
    ti = queued["ti"]
    console.print(f"queued {ti['id']} (try {ti['try_number']}); workload token:", highlight=False)
    typer.echo(queued["token"])
