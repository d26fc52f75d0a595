"""Bodies and answers of the task-instance routes (Task SDK ``_generated.py`` names)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from taskgate.wire.dag_runs import DagRun
from taskgate.wire.runtime_data import (
    ConnectionResponse,
    FiniteJson,
    VariableResponse,
)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _storable_utc(value: datetime) -> datetime:
    # An aware datetime near year 1 or 9999 may not exist in UTC; refuse it here (422)
    # rather than fail while storing it.
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime is out of range once converted to UTC") from None


UTCDateTime = Annotated[AwareDatetime, AfterValidator(_storable_utc)]
Int32 = Annotated[int, Field(ge=-(2**31), le=2**31 - 1)]
MAX_SKIPPED_TASKS = 1000


class TIEnterRunningPayload(StrictModel):
    state: Literal["running"] = "running"
    hostname: Annotated[str, Field(min_length=1, max_length=1000)]
    unixname: Annotated[str, Field(max_length=1000)]
    pid: Annotated[int, Field(ge=0, le=2**31 - 1)]
    start_date: UTCDateTime


class TIHeartbeatInfo(StrictModel):
    hostname: Annotated[str, Field(min_length=1, max_length=1000)]
    pid: Annotated[int, Field(ge=0, le=2**31 - 1)]


RenderedMapIndex = Annotated[str | None, Field(max_length=250)]


class TITerminalStatePayload(StrictModel):
    state: Literal["failed", "skipped", "removed", "upstream_failed"]
    end_date: UTCDateTime
    rendered_map_index: RenderedMapIndex = None


class TISuccessStatePayload(StrictModel):
    state: Literal["success"] = "success"
    end_date: UTCDateTime
    task_outlets: list[dict[str, Any]] | None = None
    outlet_events: list[dict[str, Any]] | None = None
    rendered_map_index: RenderedMapIndex = None


class TIRetryStatePayload(StrictModel):
    state: Literal["up_for_retry"] = "up_for_retry"
    end_date: UTCDateTime
    rendered_map_index: RenderedMapIndex = None
    retry_delay_seconds: float | None = None
    retry_reason: str | None = None


class TIDeferredStatePayload(StrictModel):
    state: Literal["deferred"] = "deferred"
    classpath: str
    trigger_kwargs: dict[str, FiniteJson] | str | None = None
    trigger_timeout: timedelta | None = None
    queue: str | None = None
    next_method: Annotated[str, Field(max_length=1000)]
    next_kwargs: dict[str, FiniteJson] | None = None
    rendered_map_index: RenderedMapIndex = None


class TIRescheduleStatePayload(StrictModel):
    state: Literal["up_for_reschedule"] = "up_for_reschedule"
    reschedule_date: UTCDateTime
    end_date: UTCDateTime


class TIAwaitingInputStatePayload(StrictModel):
    state: Literal["awaiting_input"] = "awaiting_input"
    timeout: timedelta | None = None
    next_method: Annotated[str, Field(max_length=1000)]
    next_kwargs: dict[str, FiniteJson] | None = None
    rendered_map_index: RenderedMapIndex = None


TIStateUpdate = Annotated[
    TITerminalStatePayload
    | TISuccessStatePayload
    | TIRetryStatePayload
    | TIDeferredStatePayload
    | TIRescheduleStatePayload
    | TIAwaitingInputStatePayload,
    Field(discriminator="state"),
]

TaskId = Annotated[str, Field(min_length=1, max_length=250)]


class TISkippedDownstreamTasksStatePayload(StrictModel):
    tasks: Annotated[list[TaskId | tuple[TaskId, Int32]], Field(max_length=MAX_SKIPPED_TASKS)]


class TIRunContext(BaseModel):
    dag_run: DagRun
    task_reschedule_count: int = 0
    max_tries: int
    variables: list[VariableResponse] = []
    connections: list[ConnectionResponse] = []
    next_method: str | None = None
    next_kwargs: dict[str, Any] | str | None = None
    xcom_keys_to_clear: list[str] = []
    should_retry: bool = False
    start_date: AwareDatetime | None = None


class PrevSuccessfulDagRunResponse(BaseModel):
    data_interval_start: AwareDatetime | None = None
    data_interval_end: AwareDatetime | None = None
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None


class PreviousTIResponse(BaseModel):
    task_id: str
    dag_id: str
    run_id: str
    logical_date: AwareDatetime | None = None
    start_date: AwareDatetime | None = None
    end_date: AwareDatetime | None = None
    state: str | None = None
    try_number: int
    map_index: int | None = -1
    duration: float | None = None


class TaskStatesResponse(BaseModel):
    task_states: dict[str, dict[str, str | None]]


class TaskBreadcrumbsResponse(BaseModel):
    breadcrumbs: list[dict[str, Any]]


class AssetProfile(BaseModel):
    name: str | None = None
    uri: str | None = None
    type: str


class InactiveAssetsResponse(BaseModel):
    inactive_assets: list[AssetProfile] = []
