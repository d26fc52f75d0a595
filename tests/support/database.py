"""Reading the database as it is now, past every cache."""

from __future__ import annotations

import uuid

from taskgate.db.models import TaskInstance
from taskgate.runtime import Runtime
from taskgate.services.task_instances import get_task_instance


async def fresh_ti(runtime: Runtime, ti_id: uuid.UUID) -> TaskInstance:
    """The TI as the database has it now (its own session: nothing cached)."""
    async with runtime.sessionmaker() as session:
        return await get_task_instance(session, ti_id)
