"""DAG-run reads. Security policy: execution tokens only; no subject binding -- the access
policy (``services.access``) lets a TI read only the runs of its own DAG. Triggering and
clearing runs need a scheduler, which taskgate does not have: those routes are not served."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Security
from pydantic import AwareDatetime

from taskgate.api.deps import DbSession, Requester
from taskgate.api.responses import FORBIDDEN_BY_POLICY, NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import dag_runs
from taskgate.wire.dag_runs import DagRun, DagRunStateResponse
from taskgate.wire.http import DAG_RUNS

router = APIRouter(
    prefix=DAG_RUNS,
    tags=["DAG Runs"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth)],
    responses=FORBIDDEN_BY_POLICY,
)

Strings = Annotated[list[str] | None, Query()]
RunState = Literal["queued", "running", "success", "failed"]


@router.get("/count")
async def count_dag_runs(
    dag_id: str,
    requester: Requester,
    session: DbSession,
    logical_dates: Annotated[list[AwareDatetime] | None, Query()] = None,
    run_ids: Strings = None,
    states: Strings = None,
) -> int:
    return await dag_runs.count(
        session, requester, dag_id, logical_dates=logical_dates, run_ids=run_ids, states=states
    )


@router.get("/previous")
async def previous_dag_run(
    dag_id: str,
    logical_date: AwareDatetime,
    requester: Requester,
    session: DbSession,
    state: RunState | None = None,
) -> DagRun | None:
    """The latest run before ``logical_date``; null when there is none."""
    found = await dag_runs.previous(session, requester, dag_id, logical_date, state=state)
    return DagRun.model_validate(found, from_attributes=True) if found else None


@router.get("/{dag_id}/{run_id}", responses=NOT_FOUND)
async def get_dag_run(dag_id: str, run_id: str, requester: Requester, session: DbSession) -> DagRun:
    found = await dag_runs.get(session, requester, dag_id, run_id)
    return DagRun.model_validate(found, from_attributes=True)


@router.get("/{dag_id}/{run_id}/state", responses=NOT_FOUND)
async def get_dag_run_state(
    dag_id: str, run_id: str, requester: Requester, session: DbSession
) -> DagRunStateResponse:
    found = await dag_runs.get(session, requester, dag_id, run_id)
    return DagRunStateResponse(state=found.state)
