"""``taskgate ti``: list, show and queue task instances."""

from __future__ import annotations

from enum import Enum

import typer

from taskgate.cli.common import (
    JsonOption,
    console,
    fail,
    parse_ti_id,
    print_json,
    print_table,
    with_runtime,
    with_session,
)
from taskgate.services import control, task_instances, views, workloads

app = typer.Typer(help="Task instances.", no_args_is_help=True)


@app.command("list")
def list_(
    dag_id: str | None = typer.Option(None, "--dag-id"),
    state: str | None = typer.Option(None, "--state"),
    json_output: bool = JsonOption,
) -> None:
    """List task instances, optionally of one DAG or in one state."""
    tis = with_session(
        lambda session, _rt: control.list_task_instances(session, dag_id=dag_id, state=state)
    )
    if json_output:
        print_json([views.task_instance(ti) for ti in tis])
        return
    rows = [(ti.id, ti.dag_id, ti.run_id, ti.task_id, ti.state, ti.try_number) for ti in tis]
    print_table("Task instances", ["id", "dag_id", "run_id", "task_id", "state", "try"], rows)


@app.command()
def show(ti_id: str, json_output: bool = JsonOption) -> None:
    """Show one task instance, with its rendered template fields."""
    ident = parse_ti_id(ti_id)

    async def load(session, _rt):  # type: ignore[no-untyped-def]
        ti = await task_instances.get_task_instance(session, ident)
        return ti, await task_instances.get_rendered_fields(session, ident)

    ti, rendered = with_session(load)
    data = {**views.task_instance(ti), "rendered_fields": rendered}
    if json_output:
        print_json(data)
        return
    print_table(f"Task instance {ti.id}", ["field", "value"], list(data.items()))


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
    ident = parse_ti_id(ti_id)
    airflow = output_format is WorkloadFormat.AIRFLOW
    if airflow and not (dag_rel_path and bundle_name):
        raise fail("--format airflow needs --dag-rel-path and --bundle-name", 2)

    queued = with_runtime(lambda runtime: runtime.lifecycle.queue(ident))
    if airflow:
        print_json(
            workloads.airflow_execute_task(
                queued.ti,
                queued.workload_token,
                dag_rel_path=dag_rel_path,
                bundle_name=bundle_name,
                bundle_version=bundle_version,
            )
        )
        return
    if json_output:
        print_json(views.queued(queued.workload_token, queued.ti))
        return
    console.print(
        f"queued {queued.ti.id} (try {queued.ti.try_number}); workload token:", highlight=False
    )
    typer.echo(queued.workload_token)
