"""Batched inserts: every caller's row is committed before it returns; rows added while a
transaction is in flight share the next one; a failed transaction fails all its callers
and writes none of their rows."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import event, func, select

from taskgate.db.batched_insert import BatchedInserts
from taskgate.db.models import ReadAudit, utcnow


def _row(key: str, **over) -> dict:
    return {"at": utcnow(), "ti_id": uuid.uuid4(), "dag_id": "d", "task_id": "t",
            "map_index": -1, "try_number": 1, "team": None, "kind": "variable", "key": key,
            "outcome": "allowed", "reason": None, "hostname": "h", **over}


async def _count(runtime) -> int:
    async with runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ReadAudit)))


async def test_concurrent_rows_share_transactions_and_are_all_committed(runtime):
    commits = 0

    def counted(_conn) -> None:
        nonlocal commits
        commits += 1

    event.listen(runtime.engine.sync_engine, "commit", counted)
    try:
        inserts = BatchedInserts(runtime.engine, ReadAudit.__table__)
        await asyncio.gather(*(inserts.add(_row(f"k{i}")) for i in range(50)))
        await inserts.aclose()
    finally:
        event.remove(runtime.engine.sync_engine, "commit", counted)
    assert await _count(runtime) == 50
    assert 1 <= commits <= 2  # the first row alone at most, then everything queued behind it


async def test_a_failed_transaction_fails_each_of_its_callers_and_writes_nothing(runtime):
    inserts = BatchedInserts(runtime.engine, ReadAudit.__table__)
    good = [inserts.add(_row("ok")) for _ in range(3)]
    bad = inserts.add(_row("x" * 10, kind=None))  # NOT NULL: the whole batch fails
    outcomes = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(outcome, Exception) for outcome in outcomes)
    assert await _count(runtime) == 0
    await inserts.add(_row("after"))  # the next batch is not affected
    assert await _count(runtime) == 1


@pytest.mark.parametrize("rows", [1, 3])
async def test_aclose_waits_for_rows_in_flight(runtime, rows):
    inserts = BatchedInserts(runtime.engine, ReadAudit.__table__)
    pending = [asyncio.ensure_future(inserts.add(_row(f"k{i}"))) for i in range(rows)]
    await asyncio.sleep(0)
    await inserts.aclose()
    assert all(p.done() for p in pending)
    assert await _count(runtime) == rows
