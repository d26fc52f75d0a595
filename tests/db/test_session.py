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
