"""Control API: task instances (list, read, queue for a worker, revoke their tokens).

Security policy: an operator key; reading needs ``reader``, queueing and revoking
``operator``. Teams: only TIs of DAGs of the operator's teams.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from fastapi import APIRouter, Query, Security
from pydantic import BaseModel, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.api.deps import DbSession, RuntimeDep
from taskgate.api.params import MAX_INT
from taskgate.db.models import TaskInstance
from taskgate.runtime import Runtime
from taskgate.security.operator_auth import (
    ControlRoute,
    CurrentOperator,
    OperatorPrincipal,
    require_operator,
)
from taskgate.services import control, task_instances, views, workloads

router = APIRouter(
    prefix="/task-instances",
    tags=["Task instances"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)


class WorkloadFormat(StrEnum):
    TASKGATE = "taskgate"
    AIRFLOW = "airflow"


class QueueBody(BaseModel):
    format: WorkloadFormat = WorkloadFormat.TASKGATE
    dag_rel_path: str | None = None
    bundle_name: str | None = None
    bundle_version: str | None = None

    @model_validator(mode="after")
    def airflow_needs_its_bundle(self) -> QueueBody:
        if self.format is WorkloadFormat.AIRFLOW and not (self.dag_rel_path and self.bundle_name):
            raise ValueError("format airflow needs dag_rel_path and bundle_name")
        return self


async def _visible_ti(
    session: AsyncSession, ti_id: uuid.UUID, operator: OperatorPrincipal
) -> TaskInstance:
    ti = await task_instances.get_task_instance(session, ti_id)
    operator.check_team(await control.dag_team(session, ti.dag_id), f"task instance {ti_id}")
    return ti


async def _check_visible(runtime: Runtime, ti_id: uuid.UUID, operator: OperatorPrincipal) -> None:
    # A session of its own, closed before the lifecycle step takes its connection: a
    # request never holds two (SQLite has one per process).
    async with runtime.sessionmaker() as session:
        await _visible_ti(session, ti_id, operator)


@router.get("")
async def list_task_instances(
    operator: CurrentOperator,
    session: DbSession,
    dag_id: str | None = None,
    run_id: str | None = None,
    state: str | None = None,
    team: str | None = Query(None, description="Only TIs of DAGs of this team"),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=MAX_INT),
) -> list[dict[str, Any]]:
    """Task instances in a stable order (DAG, run, task, map index), a page at a time."""
    tis = await control.list_task_instances(
        session, dag_id=dag_id, run_id=run_id, state=state, team=team, teams=operator.teams,
        limit=limit, offset=offset,
    )
    return [views.task_instance(ti) for ti in tis]


@router.get("/{ti_id}")
async def get_task_instance(
    ti_id: uuid.UUID, operator: CurrentOperator, session: DbSession
) -> dict[str, Any]:
    """One task instance (as ``taskgate ti show``), its rendered template fields and its
    token standing: the revocation watermark (tokens issued before it are refused) and how
    many workload tokens have started it."""
    return await control.describe_task_instance(session, await _visible_ti(session, ti_id, operator))


@router.post("/{ti_id}/queue", dependencies=[Security(require_operator, scopes=["role:operator"])])
async def queue(
    ti_id: uuid.UUID,
    operator: CurrentOperator,
    runtime: RuntimeDep,
    body: QueueBody | None = None,
) -> dict[str, Any]:
    """Queue the TI and hand out the workload token that starts it (as ``taskgate ti
    queue``): ``{"token", "ti"}``, or with format ``airflow`` the ``ExecuteTask``
    workload. A TI that is running already: 409 with its state."""
    body = body or QueueBody()
    await _check_visible(runtime, ti_id, operator)
    queued = await runtime.lifecycle.queue(ti_id, actor=operator.name)
    if body.format is WorkloadFormat.AIRFLOW:
        return workloads.airflow_execute_task(
            queued.ti, queued.workload_token, dag_rel_path=body.dag_rel_path,
            bundle_name=body.bundle_name, bundle_version=body.bundle_version,
        )
    return views.queued(queued.workload_token, queued.ti)


@router.post(
    "/{ti_id}/revoke-tokens", dependencies=[Security(require_operator, scopes=["role:operator"])]
)
async def revoke_tokens(
    ti_id: uuid.UUID, operator: CurrentOperator, runtime: RuntimeDep
) -> dict[str, Any]:
    """Refuse every token issued for the TI until now, on every replica within 1 s."""
    await _check_visible(runtime, ti_id, operator)
    mark = await runtime.lifecycle.revoke_tokens(ti_id, actor=operator.name)
    return {"ti_id": str(ti_id), "tokens_not_before": mark}
