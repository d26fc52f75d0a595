"""Group commit (``taskgate.db.group_commit``), on each backend: callers of the same turn
share one transaction, each gets its own row count only once it is committed, a failure
reaches every caller of that transaction and writes nothing, and nothing is left in flight
after ``aclose``."""

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
from tests.db.test_direct import running_row
from tests.helpers import fresh_ti

_TI = TaskInstance.__table__
STAMP = DirectStatement(
    update(_TI)
    .where(_TI.c.id == bindparam("ti_id"))
    .values(hostname=bindparam("host"), updated_at=bindparam("now"))
)
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture
def transactions(monkeypatch):  # type: ignore[no-untyped-def]
    """The batches ``DirectStatement.rowcounts`` was given (the real method still runs)."""
    seen: list[int] = []
    real = DirectStatement.rowcounts

    async def counting(self, engine, params):  # type: ignore[no-untyped-def]
        seen.append(len(params))
        return await real(self, engine, params)

    monkeypatch.setattr(DirectStatement, "rowcounts", counting)
    return seen


def stamp(ti_id, host: str, now: datetime | None = NOW) -> dict:  # type: ignore[no-untyped-def]
    return {"ti_id": ti_id, "host": host, "now": now}


async def test_callers_of_one_turn_share_one_transaction(runtime, factory, transactions):
    writes = GroupCommit(runtime.engine)
    first, second = await running_row(runtime, factory), await running_row(runtime, factory)
    counts = await asyncio.gather(
        writes.rowcount(STAMP, stamp(first.id, "a")),
        writes.rowcount(STAMP, stamp(uuid.uuid4(), "nobody")),
        writes.rowcount(STAMP, stamp(second.id, "b")),
    )
    assert counts == [1, 0, 1]
    assert transactions == [3]
    # Answered only once committed: another connection sees both rows.
    assert [(await fresh_ti(runtime, ti.id)).hostname for ti in (first, second)] == ["a", "b"]


async def test_callers_of_different_turns_get_transactions_of_their_own(
    runtime, factory, transactions
):
    writes = GroupCommit(runtime.engine)
    ti = await running_row(runtime, factory)
    assert await writes.rowcount(STAMP, stamp(ti.id, "one")) == 1
    assert await writes.rowcount(STAMP, stamp(ti.id, "two")) == 1
    assert transactions == [1, 1]
    assert (await fresh_ti(runtime, ti.id)).hostname == "two"


async def test_a_failed_transaction_fails_every_caller_and_writes_nothing(runtime, factory):
    writes = GroupCommit(runtime.engine)
    good, other = await running_row(runtime, factory), await running_row(runtime, factory)
    before = (await fresh_ti(runtime, good.id)).hostname
    outcomes = await asyncio.gather(
        writes.rowcount(STAMP, stamp(good.id, "lost")),
        writes.rowcount(STAMP, stamp(other.id, "bad", now=None)),  # NOT NULL: fails
        return_exceptions=True,
    )
    assert [type(outcome) for outcome in outcomes] == [OperationalError, OperationalError]
    assert (await fresh_ti(runtime, good.id)).hostname == before
    assert runtime.engine.sync_engine.pool.checkedout() == 0
    assert await writes.rowcount(STAMP, stamp(good.id, "next")) == 1  # and it goes on


async def test_a_caller_cancelled_before_its_turn_is_not_written(runtime, factory, transactions):
    writes = GroupCommit(runtime.engine)
    kept, dropped = await running_row(runtime, factory), await running_row(runtime, factory)
    before = (await fresh_ti(runtime, dropped.id)).hostname
    cancelled = asyncio.ensure_future(writes.rowcount(STAMP, stamp(dropped.id, "cancelled")))
    staying = asyncio.ensure_future(writes.rowcount(STAMP, stamp(kept.id, "kept")))
    await asyncio.sleep(0)  # both are queued
    cancelled.cancel()
    assert await staying == 1
    assert cancelled.cancelled()
    assert transactions == [1]
    assert (await fresh_ti(runtime, dropped.id)).hostname == before
    assert (await fresh_ti(runtime, kept.id)).hostname == "kept"


async def test_aclose_waits_for_what_is_queued_and_in_flight(runtime, factory):
    writes = GroupCommit(runtime.engine)
    first, second = await running_row(runtime, factory), await running_row(runtime, factory)
    callers = [asyncio.ensure_future(writes.rowcount(STAMP, stamp(ti.id, "closing")))
               for ti in (first, second)]
    await asyncio.sleep(0)  # queued, not yet sent
    await writes.aclose()
    # Committed by the time aclose returns (the engine may be disposed next).
    assert [(await fresh_ti(runtime, ti.id)).hostname for ti in (first, second)] == [
        "closing", "closing"]
    assert await asyncio.gather(*callers) == [1, 1]
