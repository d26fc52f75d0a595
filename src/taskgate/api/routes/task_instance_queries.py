"""Reads about other task instances: counts, states, a task's previous TI, a run's
breadcrumbs (what sensors and branching operators ask).

Security policy: execution tokens only; no subject binding (the path names no TI) -- the
access policy (``services.access``) lets a TI read only the TIs of its own DAG.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Security
from pydantic import AwareDatetime

from taskgate.api.deps import DbSession, Requester
from taskgate.api.responses import FORBIDDEN_BY_POLICY
from taskgate.security import TaskRoute, require_auth
from taskgate.services import task_instance_queries as queries
from taskgate.services.states import TIState
from taskgate.wire import task_instances as wire
from taskgate.wire.http import TASK_INSTANCES

router = APIRouter(
    prefix=TASK_INSTANCES,
    tags=["Task Instances"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth)],
    responses=FORBIDDEN_BY_POLICY,
)

Ids = Annotated[list[str] | None, Query()]


async def selection(
    dag_id: str,
    map_index: int | None = None,
    task_ids: Ids = None,
    task_group_id: str | None = None,
    logical_dates: Annotated[list[AwareDatetime] | None, Query()] = None,
    run_ids: Ids = None,
) -> queries.Selection:
    return queries.Selection(dag_id, map_index, task_ids, task_group_id, logical_dates, run_ids)


Selected = Annotated[queries.Selection, Depends(selection)]


@router.get("/count")
async def count_task_instances(
    selected: Selected, requester: Requester, session: DbSession, states: Ids = None
) -> int:
    return await queries.count(session, requester, selected, states)


@router.get("/states")
async def task_instance_states(
    selected: Selected, requester: Requester, session: DbSession
) -> wire.TaskStatesResponse:
    states = await queries.states_by_run(session, requester, selected)
    return wire.TaskStatesResponse(task_states=states)


@router.get("/previous/{dag_id}/{task_id}")
async def previous_task_instance(
    dag_id: str,
    task_id: str,
    requester: Requester,
    session: DbSession,
    logical_date: AwareDatetime | None = None,
    map_index: int = -1,
    state: TIState | None = None,
) -> wire.PreviousTIResponse | None:
    """The task's TI in the latest run before ``logical_date`` (any run without it); null
    when there is none."""
    found = await queries.previous(
        session, requester, dag_id, task_id, logical_date=logical_date, map_index=map_index,
        state=state,
    )
    if found is None:
        return None
    answer = wire.PreviousTIResponse.model_validate(found.ti, from_attributes=True)
    return answer.model_copy(update={"logical_date": found.logical_date, "duration": found.duration})


@router.get("/breadcrumbs")
async def task_instance_breadcrumbs(
    dag_id: str, run_id: str, requester: Requester, session: DbSession
) -> wire.TaskBreadcrumbsResponse:
    return wire.TaskBreadcrumbsResponse(
        breadcrumbs=await queries.breadcrumbs(session, requester, dag_id, run_id)
    )
