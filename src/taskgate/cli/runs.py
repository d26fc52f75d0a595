"""``taskgate runs``: create DAG runs with their task instances."""

from __future__ import annotations

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, fail, print_json, print_table

app = typer.Typer(help="DAG runs.", no_args_is_help=True)


@app.command()
def create(
    dag_id: str,
    run_id: str,
    task: list[str] = typer.Option(..., "--task", help="Task id; repeat for several."),
    max_tries: int = typer.Option(0, "--max-tries", help="Retries allowed per task."),
    mapped: list[str] = typer.Option(
        [], "--mapped", help="TASK=N: the task is mapped, with N task instances (map index 0..N-1)."
    ),
    json_output: bool = JsonOption,
) -> None:
    """Create a run whose task instances start out 'scheduled'."""
    map_lengths = {}
    for item in mapped:
        name, _, length = item.partition("=")
        if not name or not length.isdigit():
            raise fail(f"--mapped takes TASK=N, not {item!r}", 2)
        map_lengths[name] = int(length)
    view = backend().create_run(dag_id, run_id, task, max_tries, map_lengths)
    if json_output:
        print_json(view)
        return
    rows = [(t["id"], t["task_id"], t["map_index"], t["state"]) for t in view["task_instances"]]
    print_table(f"Run {dag_id}/{run_id}", ["id", "task_id", "map_index", "state"], rows)
