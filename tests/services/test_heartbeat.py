"""The heartbeat transition (``taskgate.services.state_machine.heartbeat``) with the
heartbeats of one turn gathered, as on PostgreSQL (there as one statement): each caller
gets its own answer, and only the heartbeats it accepts are written. Its write is also
the route's token gate: a token issued before the TI's ``tokens_not_before`` is refused."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import update

from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import TaskInstance
from taskgate.services.errors import Conflict, TokenRefused
from taskgate.services.state_machine import heartbeat
from taskgate.tokens import Refusal
from tests.support.database import fresh_ti


async def test_heartbeats_of_one_turn_each_get_their_own_answer(runtime, factory):
    beating, other, stopped, revoked = [await factory.running_row() for _ in range(4)]
    iat = time.time()
    async with runtime.engine.begin() as conn:
        await conn.execute(update(TaskInstance).values(hostname="h", pid=7).where(
            TaskInstance.id.in_([beating.id, other.id, stopped.id, revoked.id])))
        await conn.execute(
            update(TaskInstance).values(state="success").where(TaskInstance.id == stopped.id))
        await conn.execute(update(TaskInstance).values(tokens_not_before=iat + 0.001).where(
            TaskInstance.id == revoked.id))
    writes = GroupCommit(runtime.engine, gather=True)
    calls = [
        (beating.id, "h", 7),
        (beating.id, "h", 8),  # the same TI twice in one turn, once from another process
        (other.id, "h", 7),
        (stopped.id, "h", 7),
        (revoked.id, "h", 7),
        (beating.id, "h", 7),
    ]
    outcomes = await asyncio.wait_for(asyncio.gather(
        *(heartbeat(writes, ti_id, hostname=host, pid=pid, token_iat=iat)
          for ti_id, host, pid in calls),
        return_exceptions=True), 10)
    assert isinstance(outcomes[4], TokenRefused) and outcomes[4].refusal is Refusal.REVOKED
    reasons = [o.reason if isinstance(o, Conflict) else o for o in outcomes]
    assert reasons[:4] + reasons[5:] == [None, "running_elsewhere", None, "not_running", None]
    for ti, written in ((beating, True), (other, True), (stopped, False), (revoked, False)):
        assert ((await fresh_ti(runtime, ti.id)).last_heartbeat_at is not None) is written
    # A token issued exactly at the watermark is not revoked (as the token gate has it).
    await heartbeat(writes, revoked.id, hostname="h", pid=7, token_iat=iat + 0.001)
    assert (await fresh_ti(runtime, revoked.id)).last_heartbeat_at is not None
