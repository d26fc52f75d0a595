"""Batched inserts: every caller's row is committed before it returns; rows added while a
transaction is in flight share the next one; a failed transaction fails all its callers
and writes none of their rows."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import bindparam, func, insert, select

from taskgate.db.batched_insert import BatchedInserts
from taskgate.db.direct import DirectStatement
from taskgate.db.models import ReadAudit, utcnow


def _insert() -> DirectStatement:
    return DirectStatement(insert(ReadAudit).values({
        column.name: bindparam(column.name, type_=column.type)
        for column in ReadAudit.__table__.columns if column.name != "id"
    }))


def _row(key: str, **over) -> dict:
    return {"at": utcnow(), "ti_id": uuid.uuid4(), "dag_id": "d", "task_id": "t",
            "map_index": -1, "try_number": 1, "team": None, "kind": "variable", "key": key,
            "outcome": "allowed", "reason": None, "hostname": "h", **over}


async def _count(runtime) -> int:
    async with runtime.sessionmaker() as session:
        return int(await session.scalar(select(func.count()).select_from(ReadAudit)))


async def test_concurrent_rows_share_transactions_and_are_all_committed(runtime):
    statement = _insert()
    batches: list[int] = []
    execute_all = statement.execute_all

    async def counted(engine, params):  # type: ignore[no-untyped-def]
        batches.append(len(params))
        await execute_all(engine, params)

    statement.execute_all = counted  # type: ignore[method-assign]
    inserts = BatchedInserts(runtime.engine, statement)
    await asyncio.gather(*(inserts.add(_row(f"k{i}")) for i in range(50)))
    await inserts.aclose()
    assert await _count(runtime) == 50
    # The first row alone at most, then everything queued behind it.
    assert sum(batches) == 50 and 1 <= len(batches) <= 2


async def test_a_failed_transaction_fails_each_of_its_callers_and_writes_nothing(runtime):
    inserts = BatchedInserts(runtime.engine, _insert())
    good = [inserts.add(_row("ok")) for _ in range(3)]
    bad = inserts.add(_row("x" * 10, kind=None))  # NOT NULL: the whole batch fails
    outcomes = await asyncio.gather(*good, bad, return_exceptions=True)
    assert all(isinstance(outcome, Exception) for outcome in outcomes)
    assert await _count(runtime) == 0
    await inserts.add(_row("after"))  # the next batch is not affected
    assert await _count(runtime) == 1


@pytest.mark.parametrize("rows", [1, 3])
async def test_aclose_waits_for_rows_in_flight(runtime, rows):
    inserts = BatchedInserts(runtime.engine, _insert())
    pending = [asyncio.ensure_future(inserts.add(_row(f"k{i}"))) for i in range(rows)]
    await asyncio.sleep(0)
    await inserts.aclose()
    assert all(p.done() for p in pending)
    assert await _count(runtime) == rows


@pytest.mark.parametrize("in_flight", [1, 4])
async def test_rows_added_one_after_another_by_many_callers_are_all_written(runtime, in_flight):
    # Each caller adds its next row as soon as its last is written: rows keep arriving
    # just as writers finish, and every one must find a writer.
    inserts = BatchedInserts(runtime.engine, _insert(), in_flight=in_flight)

    async def caller(n: int) -> None:
        async with asyncio.timeout(5):  # in this task: no task between the caller and add
            for i in range(15):
                await inserts.add(_row(f"c{n}-{i}"))

    await asyncio.gather(*(caller(n) for n in range(12)))
    await inserts.aclose()
    assert await _count(runtime) == 12 * 15
