"""Task reschedules (sensors in reschedule mode). Security policy: execution tokens,
bound to the token's own TI (``ti:self``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter, Query, Security

from taskgate.api.deps import DbSession
from taskgate.api.responses import NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import task_instances
from taskgate.wire.http import TASK_RESCHEDULES

router = APIRouter(
    prefix=TASK_RESCHEDULES,
    tags=["Task Reschedules"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth, scopes=["ti:self"])],
    responses=NOT_FOUND,
)


@router.get("/{task_instance_id}/start_date")
async def first_reschedule_start_date(
    task_instance_id: uuid.UUID,
    session: DbSession,
    try_number: int = Query(1, ge=0, le=2**31 - 1),
) -> datetime | None:
    """When the first reschedule of the try began; null when it was never rescheduled."""
    await task_instances.get_task_instance(session, task_instance_id)
    return await task_instances.first_reschedule_start(session, task_instance_id, try_number)
