"""Group commit (``taskgate.db.group_commit``), on each backend: a lone caller writes at
once; callers arriving while a write waits go together after it, in one transaction, each
answered only once committed; a failure reaches every caller of that transaction and
writes nothing; a cancelled caller neither writes (if still queued) nor strands others;
``aclose`` waits for the batch in flight.

A write is kept waiting by holding its row from another engine, as another process would
(PostgreSQL: the row lock; SQLite: the write lock)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, update
from sqlalchemy.exc import OperationalError

from taskgate.db.direct import DirectStatement
from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import TaskInstance
from taskgate.db.session import create_engine
from tests.db.test_direct import running_row
from tests.helpers import fresh_ti
from tests.integration.db_locks import row_locked

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


@asynccontextmanager
async def waiting_write(runtime, writes: GroupCommit, ti, also=()) -> AsyncIterator[asyncio.Task]:  # type: ignore[no-untyped-def]
    """A write of ``ti``'s row that waits until the block ends (its task). The rows of
    ``also`` are held too (on SQLite the one write lock holds everything)."""
    holder = create_engine(runtime.settings.effective_database_url)
    try:
        async with AsyncExitStack() as held:
            for row in [ti] if runtime.settings.uses_embedded_database else [ti, *also]:
                await held.enter_async_context(row_locked(runtime, row.id, engine=holder))
            first = asyncio.create_task(writes.rowcount(STAMP, stamp(ti.id, "first")))
            await asyncio.sleep(0.3)
            assert not first.done()
            yield first
    finally:
        await holder.dispose()


async def hostnames(runtime, *tis) -> list[str]:  # type: ignore[no-untyped-def]
    return [(await fresh_ti(runtime, ti.id)).hostname for ti in tis]


async def test_a_lone_caller_writes_at_once_in_a_transaction_of_its_own(
    runtime, factory, transactions
):
    writes = GroupCommit(runtime.engine)
    ti = await running_row(runtime, factory)
    assert await asyncio.wait_for(writes.rowcount(STAMP, stamp(ti.id, "one")), 10) == 1
    assert await asyncio.wait_for(writes.rowcount(STAMP, stamp(uuid.uuid4(), "-")), 10) == 0
    assert transactions == [1, 1]
    assert await hostnames(runtime, ti) == ["one"]


async def test_callers_arriving_while_a_write_waits_go_together_after_it(
    runtime, factory, transactions
):
    writes = GroupCommit(runtime.engine)
    first, second, third = [await running_row(runtime, factory) for _ in range(3)]
    async with waiting_write(runtime, writes, first) as waiting:
        later = [asyncio.create_task(writes.rowcount(STAMP, stamp(ti_id, host)))
                 for ti_id, host in ((second.id, "b"), (uuid.uuid4(), "-"), (third.id, "c"))]
        await asyncio.sleep(0.1)
        assert not any(task.done() for task in later)  # queued behind the waiting write
    assert await waiting == 1
    assert await asyncio.wait_for(asyncio.gather(*later), 10) == [1, 0, 1]
    assert transactions == [1, 3]
    # Answered only once committed: another connection sees every row.
    assert await hostnames(runtime, first, second, third) == ["first", "b", "c"]


async def test_a_failed_transaction_fails_each_of_its_callers_and_writes_nothing(
    runtime, factory
):
    writes = GroupCommit(runtime.engine)
    first, good, other = [await running_row(runtime, factory) for _ in range(3)]
    before = await hostnames(runtime, good)
    async with waiting_write(runtime, writes, first) as waiting:
        batch = [asyncio.create_task(writes.rowcount(STAMP, stamp(good.id, "lost"))),
                 # updated_at is NOT NULL: this one fails the transaction
                 asyncio.create_task(writes.rowcount(STAMP, stamp(other.id, "x", now=None)))]
        await asyncio.sleep(0.1)
    assert await waiting == 1  # its own transaction was not affected
    outcomes = await asyncio.wait_for(asyncio.gather(*batch, return_exceptions=True), 10)
    assert [type(outcome) for outcome in outcomes] == [OperationalError, OperationalError]
    assert await hostnames(runtime, good) == before
    assert runtime.engine.sync_engine.pool.checkedout() == 0
    assert await asyncio.wait_for(writes.rowcount(STAMP, stamp(good.id, "next")), 10) == 1


async def test_a_queued_caller_cancelled_before_its_batch_is_not_written(
    runtime, factory, transactions
):
    writes = GroupCommit(runtime.engine)
    first, dropped, kept = [await running_row(runtime, factory) for _ in range(3)]
    before = await hostnames(runtime, dropped)
    async with waiting_write(runtime, writes, first) as waiting:
        cancelled = asyncio.create_task(writes.rowcount(STAMP, stamp(dropped.id, "cancelled")))
        staying = asyncio.create_task(writes.rowcount(STAMP, stamp(kept.id, "kept")))
        await asyncio.sleep(0.1)
        cancelled.cancel()
    assert (await waiting, await asyncio.wait_for(staying, 10)) == (1, 1)
    assert cancelled.cancelled()
    assert transactions == [1, 1]
    assert await hostnames(runtime, dropped, kept) == [*before, "kept"]


async def test_a_cancelled_write_strands_nobody_and_aclose_waits_for_the_batch(
    runtime, factory
):
    writes = GroupCommit(runtime.engine)
    first, second = await running_row(runtime, factory), await running_row(runtime, factory)
    async with waiting_write(runtime, writes, first, also=[second]) as waiting:
        behind = asyncio.create_task(writes.rowcount(STAMP, stamp(second.id, "behind")))
        await asyncio.sleep(0.1)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        # The batch behind it has started, and waits for the lock in turn.
        closing = asyncio.create_task(writes.aclose())
        await asyncio.sleep(0.3)
        assert not closing.done()
    await asyncio.wait_for(closing, 10)
    # Committed by the time aclose returns (the engine may be disposed next).
    assert await hostnames(runtime, second) == ["behind"]
    assert await behind == 1
    assert runtime.engine.sync_engine.pool.checkedout() == 0
