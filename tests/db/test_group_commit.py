"""Group commit (``taskgate.db.group_commit``). By default it gathers on PostgreSQL and
writes at once on SQLite; gathering itself is checked on both backends: callers of one
turn share one transaction, each answered only once committed; a failure reaches every
caller of that transaction and writes nothing; a caller cancelled before its turn is not
written; ``aclose`` waits for what is queued or in flight."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, update
from sqlalchemy.exc import OperationalError

from taskgate.db.direct import DirectStatement
from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import TaskInstance
from tests.support.database import fresh_ti

_TI = TaskInstance.__table__
STAMP = DirectStatement(
    update(_TI)
    .where(_TI.c.id == bindparam("ti_id"))
    .values(hostname=bindparam("host"), updated_at=bindparam("now"))
)
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def stamp(ti_id: uuid.UUID, host: str, now: datetime | None = NOW) -> dict:
    return {"ti_id": ti_id, "host": host, "now": now}


@pytest.fixture
def transactions(monkeypatch):  # type: ignore[no-untyped-def]
    """How many calls each transaction ``DirectStatement.rowcounts`` ran had (the real
    method still runs)."""
    seen: list[int] = []
    real = DirectStatement.rowcounts

    async def counting(self, engine, params):  # type: ignore[no-untyped-def]
        seen.append(len(params))
        return await real(self, engine, params)

    monkeypatch.setattr(DirectStatement, "rowcounts", counting)
    return seen


async def hostnames(runtime, *tis) -> list[str]:  # type: ignore[no-untyped-def]
    return [(await fresh_ti(runtime, ti.id)).hostname for ti in tis]


def one_turn(writes: GroupCommit, *calls: dict) -> asyncio.Future:
    """The calls, made in the same turn of the event loop."""
    return asyncio.wait_for(
        asyncio.gather(*(writes.rowcount(STAMP, call) for call in calls), return_exceptions=True),
        10,
    )


async def test_it_gathers_on_postgresql_and_writes_at_once_on_sqlite(
    runtime, factory, transactions
):
    writes = GroupCommit(runtime.engine)
    first, second = await factory.running_row(), await factory.running_row()
    assert await one_turn(writes, stamp(first.id, "a"), stamp(second.id, "b")) == [1, 1]
    assert transactions == ([1, 1] if runtime.settings.uses_embedded_database else [2])
    assert writes.gathers is not runtime.settings.uses_embedded_database
    assert await hostnames(runtime, first, second) == ["a", "b"]


async def test_callers_of_one_turn_share_one_transaction(runtime, factory, transactions):
    writes = GroupCommit(runtime.engine, gather=True)
    first, second = await factory.running_row(), await factory.running_row()
    counts = await one_turn(
        writes, stamp(first.id, "a"), stamp(uuid.uuid4(), "nobody"), stamp(second.id, "b"))
    assert counts == [1, 0, 1]
    assert transactions == [3]
    # Answered only once committed: another connection sees both rows.
    assert await hostnames(runtime, first, second) == ["a", "b"]
    # A later turn is a transaction of its own.
    assert await one_turn(writes, stamp(first.id, "again")) == [1]
    assert transactions == [3, 1]


async def test_a_failed_transaction_fails_each_of_its_callers_and_writes_nothing(
    runtime, factory
):
    writes = GroupCommit(runtime.engine, gather=True)
    good, other = await factory.running_row(), await factory.running_row()
    before = await hostnames(runtime, good)
    # updated_at is NOT NULL: the second call fails the transaction.
    outcomes = await one_turn(writes, stamp(good.id, "lost"), stamp(other.id, "x", now=None))
    assert [type(outcome) for outcome in outcomes] == [OperationalError, OperationalError]
    assert await hostnames(runtime, good) == before
    assert runtime.engine.sync_engine.pool.checkedout() == 0
    assert await one_turn(writes, stamp(good.id, "next")) == [1]  # and it goes on


async def test_a_caller_cancelled_before_its_turn_is_not_written(runtime, factory, transactions):
    writes = GroupCommit(runtime.engine, gather=True)
    dropped, kept = await factory.running_row(), await factory.running_row()
    before = await hostnames(runtime, dropped)
    cancelled = asyncio.create_task(writes.rowcount(STAMP, stamp(dropped.id, "cancelled")))
    staying = asyncio.create_task(writes.rowcount(STAMP, stamp(kept.id, "kept")))
    await asyncio.sleep(0)  # both are queued
    cancelled.cancel()
    assert await asyncio.wait_for(staying, 10) == 1
    assert cancelled.cancelled()
    assert transactions == [1]
    assert await hostnames(runtime, dropped, kept) == [*before, "kept"]


async def test_aclose_waits_for_what_is_queued_and_in_flight(runtime, factory):
    writes = GroupCommit(runtime.engine, gather=True)
    first, second = await factory.running_row(), await factory.running_row()
    callers = [asyncio.create_task(writes.rowcount(STAMP, stamp(ti.id, "closing")))
               for ti in (first, second)]
    await asyncio.sleep(0)  # queued, not yet sent
    await asyncio.wait_for(writes.aclose(), 10)
    await asyncio.sleep(0)  # answered when aclose returned: the callers just take it
    assert all(caller.done() for caller in callers)
    # Committed by the time aclose returned (the engine may be disposed next).
    assert await hostnames(runtime, first, second) == ["closing", "closing"]
    assert await asyncio.gather(*callers) == [1, 1]
