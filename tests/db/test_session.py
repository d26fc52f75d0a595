"""The engine's pooled PostgreSQL connections (``taskgate.db.session``): each one taken
from the pool is tested with one ``SELECT 1`` and nothing else, and one the server dropped
while it sat in the pool is replaced instead of failing the statement."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.db.direct import DirectStatement
from taskgate.db.session import EngineOptions, create_engine

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

BACKEND_PID = DirectStatement(select(func.pg_backend_pid()))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, EngineOptions(size=1, max_overflow=0))
    try:
        yield engine
    finally:
        await engine.dispose()


async def test_a_pooled_connection_is_pinged_once_and_a_new_one_not_at_all(
    engine: AsyncEngine,
) -> None:
    sent: list[str] = []

    def log_queries(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.driver_connection.add_query_logger(lambda logged: sent.append(logged.query))

    event.listen(engine.sync_engine, "connect", log_queries)
    first = await BACKEND_PID.first(engine, {})
    assert sent == []  # a new connection is not pinged
    second = await BACKEND_PID.first(engine, {})
    assert second == first  # the same connection, from the pool
    # One query in the simple protocol; SQLAlchemy's pre-ping sends BEGIN and ROLLBACK
    # around its own. (asyncpg logs only queries sent in the simple protocol, and the
    # statement itself is not.)
    assert sent == ["SELECT 1"]


async def test_a_connection_the_server_dropped_is_replaced_at_checkout(
    engine: AsyncEngine, database_url: str
) -> None:
    (dropped,) = await BACKEND_PID.first(engine, {})  # type: ignore[misc]
    admin = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", dropped)
        for _ in range(100):  # terminated once it is gone from the server's list
            if not await admin.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", dropped
            ):
                break
            await asyncio.sleep(0.02)
    finally:
        await admin.close()
    (serving,) = await BACKEND_PID.first(engine, {})  # type: ignore[misc]
    assert serving != dropped
    assert engine.sync_engine.pool.checkedout() == 0


async def _backends_of_waves(engine: AsyncEngine, waves: int, width: int) -> set[int]:
    """The backend pids that served ``waves`` bursts of ``width`` concurrent statements."""

    async def one() -> int:
        async with engine.connect() as conn:
            (pid,) = (await conn.execute(select(func.pg_backend_pid()))).one()
            await asyncio.sleep(0.02)  # all of a wave hold their connection at once
            return int(pid)

    pids: set[int] = set()
    for _ in range(waves):
        pids.update(await asyncio.gather(*(one() for _ in range(width))))
    return pids


@pytest.mark.parametrize("fast_paths", [True, False], ids=["fast-paths", "public-pool"])
async def test_overflow_connections_serve_wave_after_wave_while_in_use(
    database_url: str, fast_paths: bool
) -> None:
    engine = create_engine(database_url, EngineOptions(size=1, max_overflow=3,
                                                       fast_paths=fast_paths))
    try:
        pids = await _backends_of_waves(engine, waves=5, width=4)
        pool = engine.sync_engine.pool
        if fast_paths:  # the same four sessions served every wave, and stay open
            assert len(pids) == 4
            assert pool.checkedin() == 4 and pool.checkedout() == 0
        else:  # SQLAlchemy's pool closes the three overflow connections after each wave
            assert len(pids) == 1 + 3 * 5
            assert pool.checkedin() == 1
    finally:
        await engine.dispose()


async def test_an_overflow_connection_idle_too_long_is_closed_when_another_returns(
    database_url: str,
) -> None:
    engine = create_engine(database_url, EngineOptions(size=1, max_overflow=3,
                                                       overflow_idle_seconds=0.2))
    try:
        await _backends_of_waves(engine, waves=1, width=4)
        pool = engine.sync_engine.pool
        assert pool.checkedin() == 4  # the wave's returns came within the idle limit
        await asyncio.sleep(0.3)
        await _backends_of_waves(engine, waves=1, width=1)  # one connection out and back
        assert pool.checkedin() == 1 and pool.overflow() == 0  # the pool size kept, no more
        assert pool.checkedout() == 0
    finally:
        await engine.dispose()
