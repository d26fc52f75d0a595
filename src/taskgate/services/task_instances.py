"""A task instance's own data, read and written without changing its state: the row
itself, its rendered template fields and map index, its reschedules, the previous
successful run. (State changes are the lifecycle's: ``services.lifecycle``.)"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import (
    DagRun,
    RenderedTaskInstanceFields,
    TaskInstance,
    TaskReschedule,
    utcnow,
)
from taskgate.db.upsert import upsert
from taskgate.services import dag_runs
from taskgate.services.errors import NotFound


def ti_not_found(ti_id: uuid.UUID) -> NotFound:
    return NotFound("not_found", f"Task Instance {ti_id} not found")


async def get_task_instance(session: AsyncSession, ti_id: uuid.UUID) -> TaskInstance:
    ti = await session.get(TaskInstance, ti_id)
    if ti is None:
        raise ti_not_found(ti_id)
    return ti


async def set_rendered_fields(
    session: AsyncSession, ti_id: uuid.UUID, fields: dict[str, Any]
) -> None:
    await get_task_instance(session, ti_id)
    row = {"ti_id": ti_id, "rendered_fields": fields, "updated_at": utcnow()}
    stmt = upsert(
        session,
        RenderedTaskInstanceFields,
        row,
        conflict=["ti_id"],
        update=["rendered_fields", "updated_at"],
    )
    await session.execute(stmt)
    await session.commit()


async def get_rendered_fields(session: AsyncSession, ti_id: uuid.UUID) -> dict[str, Any] | None:
    row = await session.get(RenderedTaskInstanceFields, ti_id)
    return row.rendered_fields if row else None


# What a change's event names the TI by (services.events), returned by the change itself.
TI_IDENTITY = (
    TaskInstance.id,
    TaskInstance.dag_id,
    TaskInstance.run_id,
    TaskInstance.task_id,
    TaskInstance.map_index,
    TaskInstance.try_number,
)


async def update_ti(
    session: AsyncSession, ti_id: uuid.UUID, *conditions: Any, **values: Any
) -> Row[Any] | None:
    """Set ``values`` on the TI if it meets ``conditions``: one conditional UPDATE, so the
    database decides between concurrent requests. The TI's identity (``TI_IDENTITY``,
    after the update) if it matched, else None; not committed."""
    stmt = (
        update(TaskInstance)
        .where(TaskInstance.id == ti_id, *conditions)
        .values(updated_at=utcnow(), **values)
        .returning(*TI_IDENTITY)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).first()


async def set_rendered_map_index(session: AsyncSession, ti_id: uuid.UUID, value: str) -> None:
    if not await update_ti(session, ti_id, rendered_map_index=value):
        raise ti_not_found(ti_id)
    await session.commit()


async def reschedule_count(session: AsyncSession, ti: TaskInstance) -> int:
    """How often the current try was rescheduled (a sensor's poke count so far)."""
    stmt = select(func.count()).where(
        TaskReschedule.ti_id == ti.id, TaskReschedule.try_number == ti.try_number
    )
    return (await session.execute(stmt)).scalar_one()


async def first_reschedule_start(
    session: AsyncSession, ti_id: uuid.UUID, try_number: int
) -> datetime | None:
    """When the first reschedule of the try began (what a rescheduling sensor times out
    from); None when the try was never rescheduled."""
    stmt = (
        select(TaskReschedule.start_date)
        .where(TaskReschedule.ti_id == ti_id, TaskReschedule.try_number == try_number)
        .order_by(TaskReschedule.id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def dag_run_of(session: AsyncSession, ti: TaskInstance) -> DagRun:
    stmt = select(DagRun).where(DagRun.dag_id == ti.dag_id, DagRun.run_id == ti.run_id)
    return (await session.execute(stmt)).scalar_one()


async def previous_successful_dag_run(session: AsyncSession, ti_id: uuid.UUID) -> DagRun | None:
    ti = await get_task_instance(session, ti_id)
    current = await dag_run_of(session, ti)
    if current.logical_date is None:
        return None  # nothing is "before" a run without a logical date
    return await dag_runs.latest_before(session, ti.dag_id, current.logical_date, state="success")
