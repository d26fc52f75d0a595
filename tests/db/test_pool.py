"""The connection pool serves waiting requests in arrival order (``taskgate.db.pool``)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.util import greenlet_spawn

from taskgate.db.pool import FairQueue
from taskgate.db.session import EngineOptions, create_engine


async def test_a_returned_connection_goes_to_the_longest_waiter() -> None:
    queue = FairQueue(1)
    queue.put_nowait("connection")
    held = await greenlet_spawn(queue.get, True, 5)
    waiters = [asyncio.create_task(greenlet_spawn(queue.get, True, 5)) for _ in range(3)]
    await asyncio.sleep(0.01)  # all three wait, in this order
    # A newcomer that runs before the first waiter wakes up: it must not take the connection.
    newcomer = asyncio.create_task(greenlet_spawn(queue.get, True, 5))
    queue.put_nowait(held)
    await asyncio.sleep(0.01)
    assert waiters[0].done() and waiters[0].result() == "connection"
    assert not newcomer.done()
    for i in range(1, 3):  # each passes it on to the next in line
        queue.put_nowait(await waiters[i - 1])
        await asyncio.sleep(0.01)
        assert waiters[i].done() and not newcomer.done()
    queue.put_nowait(await waiters[2])
    assert await asyncio.wait_for(newcomer, 1) == "connection"


async def test_a_waiter_that_times_out_or_is_cancelled_leaks_nothing(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'p.db'}", EngineOptions(timeout=0.2))
    try:
        release = asyncio.Event()

        async def hold() -> None:
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
                await release.wait()

        holder = asyncio.create_task(hold())
        await asyncio.sleep(0.05)
        with pytest.raises(PoolTimeout):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        cancelled = asyncio.create_task(engine.connect().start())
        await asyncio.sleep(0.05)
        cancelled.cancel()
        release.set()
        await holder
        # The connection went back to the pool, not to the waiters that gave up.
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 2"))).scalar_one() == 2
        assert engine.pool.checkedout() == 0
    finally:
        await engine.dispose()
