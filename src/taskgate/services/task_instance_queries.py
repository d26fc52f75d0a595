"""What a task instance may learn about other task instances of its own DAG: counts,
states, the previous one of a task, and the finished ones of a run (breadcrumbs).

taskgate does not hold the DAG's structure, so a task group is the set of tasks whose id
starts with ``<group_id>.`` -- the ids Airflow gives the tasks of a group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import DagRun, TaskInstance
from taskgate.services import access
from taskgate.services.like import starts_with
from taskgate.services.states import TERMINAL

WHAT = "task instances"


@dataclass(frozen=True)
class Selection:
    """Which TIs of one DAG a count or states query is about (Airflow's query parameters)."""

    dag_id: str
    map_index: int | None = None
    task_ids: Sequence[str] | None = None
    task_group_id: str | None = None
    logical_dates: Sequence[datetime] | None = None
    run_ids: Sequence[str] | None = None

    def where(self) -> list[Any]:
        clauses: list[Any] = [TaskInstance.dag_id == self.dag_id]
        if self.map_index is not None:
            clauses.append(TaskInstance.map_index == self.map_index)
        if self.task_ids:
            clauses.append(TaskInstance.task_id.in_(self.task_ids))
        if self.task_group_id:
            clauses.append(starts_with(TaskInstance.task_id, f"{self.task_group_id}."))
        if self.run_ids:
            clauses.append(TaskInstance.run_id.in_(self.run_ids))
        if self.logical_dates:
            runs = select(DagRun.run_id).where(
                DagRun.dag_id == self.dag_id, DagRun.logical_date.in_(self.logical_dates)
            )
            clauses.append(TaskInstance.run_id.in_(runs))
        return clauses


async def count(
    session: AsyncSession,
    requester: access.Requester,
    selection: Selection,
    states: Sequence[str] | None = None,
) -> int:
    """How many TIs match. A TI always has a state here, so ``"null"`` in ``states``
    (Airflow's "no state yet") matches none."""
    access.check_dag_read(requester, selection.dag_id, WHAT)
    stmt = select(func.count()).select_from(TaskInstance).where(*selection.where())
    if states:
        stmt = stmt.where(TaskInstance.state.in_([s for s in states if s != "null"]))
    return (await session.execute(stmt)).scalar_one()


async def states_by_run(
    session: AsyncSession, requester: access.Requester, selection: Selection
) -> dict[str, dict[str, str]]:
    """``{run_id: {task_id: state}}``; a mapped TI is keyed ``<task_id>_<map_index>``."""
    access.check_dag_read(requester, selection.dag_id, WHAT)
    stmt = select(
        TaskInstance.run_id, TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state
    ).where(*selection.where())
    result: dict[str, dict[str, str]] = defaultdict(dict)
    for run_id, task_id, map_index, state in await session.execute(stmt):
        result[run_id][task_id if map_index < 0 else f"{task_id}_{map_index}"] = state
    return dict(result)


@dataclass(frozen=True)
class PreviousTI:
    ti: TaskInstance
    logical_date: datetime | None

    @property
    def duration(self) -> float | None:
        return _duration(self.ti.start_date, self.ti.end_date)


def _duration(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None


async def previous(
    session: AsyncSession,
    requester: access.Requester,
    dag_id: str,
    task_id: str,
    *,
    logical_date: datetime | None = None,
    map_index: int = -1,
    state: str | None = None,
) -> PreviousTI | None:
    """The TI of ``task_id`` in the latest run (before ``logical_date`` when given)."""
    access.check_dag_read(requester, dag_id, WHAT)
    stmt = (
        select(TaskInstance, DagRun.logical_date)
        .join(DagRun, (DagRun.dag_id == TaskInstance.dag_id) & (DagRun.run_id == TaskInstance.run_id))
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    )
    if logical_date is not None:
        stmt = stmt.where(DagRun.logical_date < logical_date)
    if state:
        stmt = stmt.where(TaskInstance.state == state)
    stmt = stmt.order_by(DagRun.logical_date.desc(), DagRun.id.desc()).limit(1)
    row = (await session.execute(stmt)).first()
    return PreviousTI(*row) if row else None


async def breadcrumbs(
    session: AsyncSession, requester: access.Requester, dag_id: str, run_id: str
) -> list[dict[str, Any]]:
    """The finished TIs of a run, by task and map index. ``operator`` is always None:
    taskgate does not know which operator a task uses."""
    access.check_dag_read(requester, dag_id, WHAT)
    stmt = (
        select(TaskInstance)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.state.in_(TERMINAL),
        )
        .order_by(TaskInstance.task_id, TaskInstance.map_index)
    )
    return [
        {
            "task_id": ti.task_id,
            "map_index": ti.map_index,
            "state": ti.state,
            "operator": None,
            "duration": _duration(ti.start_date, ti.end_date),
        }
        for ti in (await session.execute(stmt)).scalars()
    ]
