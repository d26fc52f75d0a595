"""``taskgate events``: the event feed (TI state changes, token revocations, operator
actions), read back or followed."""

from __future__ import annotations

from typing import Any

import typer

from taskgate.cli.backend import Row, backend
from taskgate.cli.common import print_json_line

PAGE = 1000  # what one read answers at most (the feed's own limit)

HELP = (
    "The event feed: TI state changes, token revocations, operator actions.\n\n"
    "Prints the events after --after (default: the oldest kept), one per line: id, event, "
    "time, DAG/run/task, change, actor; with --follow, then each new one as it happens "
    '(Ctrl-C ends it). --json prints JSON Lines, {"id", "event", "data"} per line.'
)


def _where(data: dict[str, Any]) -> str:
    if "task_id" in data:
        where = f"{data.get('dag_id')}/{data.get('run_id')}/{data['task_id']}"
        map_index = data.get("map_index", -1)
        return f"{where}[{map_index}]" if map_index is not None and map_index >= 0 else where
    return str(data.get("target") or data.get("dag_id") or "-")


def _change(kind: str, data: dict[str, Any]) -> str:
    if "to" in data:
        return f"{data.get('from') or '-'} -> {data['to']}"
    if kind == "ti.revoked":
        return "tokens revoked"
    return str(data.get("action") or kind)


def line(event: Row) -> str:
    """One event as one line: id, kind, time, DAG/run/task, the change, who made it."""
    data = event["data"]
    return "  ".join((
        f"{event['id']:>6}", f"{event['event']:<15}", str(data.get("at", "-")),
        _where(data), _change(event["event"], data), str(data.get("actor", "-")),
    ))


def events(
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing new events."),
    after: int | None = typer.Option(
        None, "--after", min=0, help="Start after this event id (default: the oldest kept)."
    ),
    dag_id: str | None = typer.Option(None, "--dag-id", help="Only this DAG's events."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON Lines."),
) -> None:
    def emit(event: Row) -> None:
        if json_output:
            print_json_line(event)
        else:
            typer.echo(line(event))

    source = backend()
    try:
        if follow:
            source.follow_events(after, dag_id, emit)
            return
        while True:
            batch = source.events(after, dag_id)
            for event in batch:
                emit(event)
            if len(batch) < PAGE:
                return
            after = batch[-1]["id"]
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except BrokenPipeError:  # the reader (head, grep -m) has had enough
        raise typer.Exit(0) from None
