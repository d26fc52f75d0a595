"""``taskgate audit``: the read audit (who read which variable or connection, when)."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from taskgate.cli.backend import backend
from taskgate.cli.common import JsonOption, fail, parse_ti_id, print_json, print_table

app = typer.Typer(help="The read audit.", no_args_is_help=True)


@app.command()
def reads(
    ti: str | None = typer.Option(None, "--ti", help="Only this task instance's reads."),
    dag_id: str | None = typer.Option(None, "--dag-id", help="Only this DAG's reads."),
    key: str | None = typer.Option(None, "--key", help="Only reads of this variable key or connection id."),
    since: str | None = typer.Option(None, "--since", help="Only reads at or after this ISO 8601 time (UTC if no zone)."),
    json_output: bool = JsonOption,
) -> None:
    """Every read of a variable or connection by a task, newest first: allowed, refused
    (and by which rule) or not found; with the TI, try and host. Never a value."""
    ti_id = str(parse_ti_id(ti)) if ti is not None else None
    found = backend().audit_reads(ti_id, dag_id, key, _utc(since) if since else None)
    if json_output:
        print_json(found)
        return
    print_table(
        "Reads",
        ["at", "dag_id", "task", "try", "kind", "key", "outcome", "host"],
        [
            (r["at"], r["dag_id"],
             r["task_id"] if r["map_index"] < 0 else f"{r['task_id']}[{r['map_index']}]",
             str(r["try_number"]), r["kind"], r["key"],
             r["outcome"] if r["reason"] is None else f"{r['outcome']} ({r['reason']})",
             r["hostname"] or "-")
            for r in found
        ],
    )


def _utc(since: str) -> datetime:
    """``since`` read as ISO 8601 (UTC when it names no zone)."""
    try:
        parsed = datetime.fromisoformat(since)
    except ValueError:
        raise fail(f"--since {since!r}: not an ISO 8601 time (2026-12-01T09:00)", 2) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
