"""``taskgate xcoms``: read the XComs that tasks pushed."""

from __future__ import annotations

import json

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, print_json, print_table

app = typer.Typer(help="XComs (values passed between tasks).", no_args_is_help=True)


@app.command("list")
def list_(
    dag_id: str | None = typer.Option(None, "--dag-id"),
    run_id: str | None = typer.Option(None, "--run-id"),
    task_id: str | None = typer.Option(None, "--task-id"),
    key: str | None = typer.Option(None, "--key"),
    json_output: bool = JsonOption,
) -> None:
    """List stored XComs with their values, optionally filtered."""
    rows = backend().list_xcoms(dag_id, run_id, task_id, key)
    if json_output:
        print_json(rows)
        return
    print_table(
        "XComs",
        ["dag_id", "run_id", "task_id", "map_index", "key", "value"],
        [(x["dag_id"], x["run_id"], x["task_id"], x["map_index"], x["key"], json.dumps(x["value"]))
         for x in rows],
    )


@app.command()
def get(
    dag_id: str,
    run_id: str,
    task_id: str,
    key: str = typer.Argument("return_value"),
    map_index: int = typer.Option(-1, "--map-index"),
) -> None:
    """Print one XCom's value as JSON (the task's return value unless KEY is given)."""
    print_json(backend().get_xcom(dag_id, run_id, task_id, key, map_index))
