"""The task state store: JSON values a task instance keeps under keys of its own, across
its tries and resumptions (a sensor's progress, a job id to reattach to). The API binds
every call to the token's own TI (``ti:self``); an expired key reads as absent."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import TaskStateEntry, utcnow
from taskgate.services.errors import NotFound
from taskgate.services.task_instances import get_task_instance


async def read(session: AsyncSession, ti_id: uuid.UUID, key: str) -> Any:
    await get_task_instance(session, ti_id)
    stmt = select(TaskStateEntry.value).where(
        TaskStateEntry.ti_id == ti_id,
        TaskStateEntry.key == key,
        or_(TaskStateEntry.expires_at.is_(None), TaskStateEntry.expires_at > utcnow()),
    )
    raw = (await session.execute(stmt)).scalar_one_or_none()
    if raw is None:
        raise NotFound("not_found", f"Task state store key {key!r} not found")
    return json.loads(raw)


async def write(
    session: AsyncSession, ti_id: uuid.UUID, key: str, value: Any, expires_at: datetime | None
) -> None:
    await get_task_instance(session, ti_id)
    row = await session.get(TaskStateEntry, (ti_id, key))
    if row is None:
        row = TaskStateEntry(ti_id=ti_id, key=key)
        session.add(row)
    row.value, row.expires_at = json.dumps(value), expires_at
    await session.commit()


async def remove(session: AsyncSession, ti_id: uuid.UUID, key: str | None = None) -> None:
    """Delete one key, or every key of the TI when ``key`` is None. Absent keys are fine."""
    await get_task_instance(session, ti_id)
    stmt = delete(TaskStateEntry).where(TaskStateEntry.ti_id == ti_id)
    if key is not None:
        stmt = stmt.where(TaskStateEntry.key == key)
    await session.execute(stmt)
    await session.commit()
