"""Answers of the DAG-run routes and the run context's ``dag_run`` (Task SDK names)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel


class DagRun(BaseModel):
    dag_id: str
    run_id: str
    logical_date: AwareDatetime | None
    data_interval_start: AwareDatetime | None
    data_interval_end: AwareDatetime | None
    run_after: AwareDatetime
    start_date: AwareDatetime | None
    end_date: AwareDatetime | None
    clear_number: int = 0
    run_type: str
    state: str
    conf: dict[str, Any] | None = None
    triggering_user_name: str | None = None
    consumed_asset_events: list[dict[str, Any]] = []
    partition_key: str | None = None
    partition_date: AwareDatetime | None = None
    note: str | None = None
    team_name: str | None = None


class DagRunStateResponse(BaseModel):
    state: Literal["queued", "running", "success", "failed"]
