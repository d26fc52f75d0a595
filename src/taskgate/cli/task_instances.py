"""``taskgate ti``: list, show and queue task instances."""

from __future__ import annotations

import typer

from taskgate.cli import serialize
from taskgate.cli.common import (
    JsonOption,
    console,
    parse_ti_id,
    print_json,
    print_table,
    with_session,
)
from taskgate.services import control
from taskgate.services import task_instances as lifecycle

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
        print_json([serialize.task_instance(ti) for ti in tis])
        return
    rows = [(ti.id, ti.dag_id, ti.run_id, ti.task_id, ti.state, ti.try_number) for ti in tis]
    print_table("Task instances", ["id", "dag_id", "run_id", "task_id", "state", "try"], rows)


@app.command()
def show(ti_id: str, json_output: bool = JsonOption) -> None:
    """Show one task instance, with its rendered template fields."""
    ident = parse_ti_id(ti_id)

    async def load(session, _rt):  # type: ignore[no-untyped-def]
        ti = await lifecycle.get_task_instance(session, ident)
        return ti, await lifecycle.get_rendered_fields(session, ident)

    ti, rendered = with_session(load)
    data = {**serialize.task_instance(ti), "rendered_fields": rendered}
    if json_output:
        print_json(data)
        return
    print_table(f"Task instance {ti.id}", ["field", "value"], list(data.items()))


@app.command()
def queue(ti_id: str, json_output: bool = JsonOption) -> None:
    """Queue a task instance and print the workload token that starts it."""
    ident = parse_ti_id(ti_id)

    async def work(session, runtime):  # type: ignore[no-untyped-def]
        return await control.queue(session, ident, runtime.require_issuer())

    queued = with_session(work)
    if json_output:
        print_json({"token": queued.workload_token, "ti": serialize.task_instance(queued.ti)})
        return
    console.print(
        f"queued {queued.ti.id} (try {queued.ti.try_number}); workload token:", highlight=False
    )
    typer.echo(queued.workload_token)
