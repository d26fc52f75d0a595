"""The control plane: what the orchestrator (the control API, the ``taskgate`` CLI) does
to the state.

Registers DAGs, creates runs with their task instances and reads TIs back. These calls
are trusted: they do not go through tokens; ``actor`` names who made a change in its
event. (Queueing a TI and revoking its tokens are steps of its lifecycle:
``services.lifecycle``.)
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import Dag, DagRun, TaskInstance, UsedWorkloadToken, utcnow
from taskgate.services import events, task_instances, views
from taskgate.services.errors import Conflict, InvalidInput, NotFound
from taskgate.services.states import TIState
from taskgate.services.xcoms import MAX_MAP_LENGTH
from taskgate.wire.http import TokenBinding


async def add_dag(
    session: AsyncSession,
    dag_id: str,
    *,
    team: str | None = None,
    token_binding: str | None = None,
    actor: str = events.LOCAL_ACTOR,
) -> Dag:
    """Register a DAG. Repeating it is fine; changing its team is refused (it moves data
    access between teams, so it must be deliberate: delete and re-add). ``token_binding``
    (``dpop``: its tasks start only with a DPoP proof, so every execution token they hold
    is bound to a key; ``bearer``) is set when given and kept when not; a DAG that never
    had one follows the server's ``TASKGATE_TOKEN_BINDING``."""
    if token_binding is not None and token_binding not in set(TokenBinding):
        raise InvalidInput("invalid_token_binding",
                           f"token binding must be one of {', '.join(TokenBinding)}")
    dag = await session.get(Dag, dag_id)
    if dag is not None:
        if dag.team != team:
            raise Conflict(
                "team_mismatch", f"DAG '{dag_id}' already exists with team {dag.team!r}"
            )
        if token_binding is None or token_binding == dag.token_binding:
            return dag
        dag.token_binding = token_binding
    else:
        dag = Dag(dag_id=dag_id, team=team, token_binding=token_binding)
        session.add(dag)
    await events.commit(session, actor, [events.operator_action(
        "dag.put", dag_id, dag_id=dag_id, team=team, token_binding=dag.token_binding)])
    return dag


async def list_dags(session: AsyncSession) -> Sequence[Dag]:
    return (await session.execute(select(Dag).order_by(Dag.dag_id))).scalars().all()


@dataclass(frozen=True)
class CreatedRun:
    dag_run: DagRun
    task_instances: list[TaskInstance]


async def create_run(
    session: AsyncSession,
    dag_id: str,
    run_id: str,
    task_ids: Sequence[str],
    *,
    max_tries: int = 0,
    logical_date: datetime | None = None,
    conf: dict | None = None,
    mapped: Mapping[str, int] | None = None,
    actor: str = events.LOCAL_ACTOR,
) -> CreatedRun:
    """A run with one TI per task; a task in ``mapped`` gets that many TIs instead, with
    map indexes 0..n-1 (what the scheduler would expand a mapped task to)."""
    mapped = dict(mapped or {})
    if not task_ids:
        raise InvalidInput("no_tasks", "A run needs at least one task (--task)")
    if len(set(task_ids)) != len(task_ids):
        raise InvalidInput("duplicate_task", "Each --task may be given once")
    if unknown := sorted(set(mapped) - set(task_ids)):
        raise InvalidInput("unknown_mapped_task", f"Mapped tasks must also be --task: {unknown}")
    if any(not 1 <= n <= MAX_MAP_LENGTH for n in mapped.values()):
        raise InvalidInput("invalid_map_length", f"A mapped task has 1 to {MAX_MAP_LENGTH} TIs")
    if max_tries < 0:
        raise InvalidInput("invalid_max_tries", "max_tries must be 0 or more")
    if await session.get(Dag, dag_id) is None:
        raise NotFound("dag_not_found", f"DAG '{dag_id}' not found: add it with `taskgate dags add`")
    now = utcnow()
    logical = logical_date or now
    dag_run = DagRun(
        dag_id=dag_id,
        run_id=run_id,
        run_type="manual",
        state="running",
        logical_date=logical,
        data_interval_start=logical,
        data_interval_end=logical,
        run_after=logical,
        start_date=now,
        conf=conf or {},
    )
    tis = [
        TaskInstance(
            id=uuid.uuid4(),
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            try_number=0,
            max_tries=max_tries,
            state=TIState.SCHEDULED,
        )
        for task_id in task_ids
        for map_index in (range(mapped[task_id]) if task_id in mapped else [-1])
    ]
    session.add(dag_run)
    session.add_all(tis)
    created = [events.operator_action("run.create", f"{dag_id}/{run_id}", dag_id=dag_id,
                                      run_id=run_id, task_instances=len(tis))]
    created += [events.ti_state(ti, TIState.SCHEDULED, previous=None) for ti in tis]
    try:
        await events.commit(session, actor, created)
    except IntegrityError:
        await session.rollback()
        raise Conflict("run_exists", f"DAG run '{run_id}' of DAG '{dag_id}' already exists") from None
    return CreatedRun(dag_run, tis)


async def list_task_instances(
    session: AsyncSession,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    state: str | None = None,
    team: str | None = None,
    teams: Collection[str] = (),
    limit: int | None = None,
    offset: int = 0,
) -> Sequence[TaskInstance]:
    """TIs in a stable order, filtered (``team``: of DAGs of that team); with ``teams``,
    only of DAGs of those teams (what the caller may see)."""
    stmt = select(TaskInstance).order_by(
        TaskInstance.dag_id, TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index
    )
    if dag_id is not None:
        stmt = stmt.where(TaskInstance.dag_id == dag_id)
    if run_id is not None:
        stmt = stmt.where(TaskInstance.run_id == run_id)
    if state is not None:
        stmt = stmt.where(TaskInstance.state == state)
    if teams or team is not None:
        stmt = stmt.join(Dag, Dag.dag_id == TaskInstance.dag_id)
    if teams:
        stmt = stmt.where(Dag.team.in_(teams))
    if team is not None:
        stmt = stmt.where(Dag.team == team)
    if limit is not None:
        stmt = stmt.limit(limit).offset(offset)
    return (await session.execute(stmt)).scalars().all()


async def dag_team(session: AsyncSession, dag_id: str) -> str | None:
    """The team of a registered DAG (NotFound if it is not registered)."""
    dag = await session.get(Dag, dag_id)
    if dag is None:
        raise NotFound("not_found", f"DAG '{dag_id}' is not registered")
    return dag.team


async def describe_task_instance(session: AsyncSession, ti: TaskInstance) -> dict[str, Any]:
    """A TI as ``taskgate ti show`` and ``GET /control/v1/task-instances/{id}`` show it:
    its row, its rendered template fields and its token standing (the revocation
    watermark, when the newest execution token issued expires, how many workload tokens
    have started it)."""
    return {
        **views.task_instance(ti),
        "rendered_fields": await task_instances.get_rendered_fields(session, ti.id),
        "tokens_not_before": ti.tokens_not_before,
        "token_expires_at": ti.token_expires_at,
        "workload_tokens_spent": await spent_workload_tokens(session, ti.id),
    }


async def spent_workload_tokens(session: AsyncSession, ti_id: uuid.UUID) -> int:
    """How many workload tokens have started this TI (one per try that started)."""
    count = await session.scalar(
        select(func.count()).where(UsedWorkloadToken.ti_id == ti_id)
    )
    return int(count or 0)
