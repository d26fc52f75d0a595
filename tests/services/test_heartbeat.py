"""The heartbeat service (``taskgate.services.task_instances.heartbeat``) with the
heartbeats of one turn gathered, as on PostgreSQL (there as one statement): each caller
gets its own answer, and only the heartbeats it accepts are written."""

from __future__ import annotations

import asyncio

from sqlalchemy import update

from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import TaskInstance
from taskgate.services.errors import Conflict
from taskgate.services.task_instances import heartbeat
from tests.helpers import fresh_ti


async def test_heartbeats_of_one_turn_each_get_their_own_answer(runtime, factory):
    beating, other, stopped = [await factory.running_row() for _ in range(3)]
    async with runtime.engine.begin() as conn:
        await conn.execute(update(TaskInstance).values(hostname="h", pid=7).where(
            TaskInstance.id.in_([beating.id, other.id, stopped.id])))
        await conn.execute(
            update(TaskInstance).values(state="success").where(TaskInstance.id == stopped.id))
    writes = GroupCommit(runtime.engine, gather=True)
    calls = [
        (beating.id, "h", 7),
        (beating.id, "h", 8),  # the same TI twice in one turn, once from another process
        (other.id, "h", 7),
        (stopped.id, "h", 7),
        (beating.id, "h", 7),
    ]
    outcomes = await asyncio.wait_for(asyncio.gather(
        *(heartbeat(writes, ti_id, hostname=host, pid=pid) for ti_id, host, pid in calls),
        return_exceptions=True), 10)
    reasons = [o.reason if isinstance(o, Conflict) else o for o in outcomes]
    assert reasons == [None, "running_elsewhere", None, "not_running", None]
    assert (await fresh_ti(runtime, beating.id)).last_heartbeat_at is not None
    assert (await fresh_ti(runtime, other.id)).last_heartbeat_at is not None
    assert (await fresh_ti(runtime, stopped.id)).last_heartbeat_at is None
