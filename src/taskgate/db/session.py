"""Engine and session factory. SQLite gets WAL and foreign keys, and statements that run on
the event loop's thread (see ``taskgate.db.sqlite``, which also owns its busy timeout)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from taskgate.db.pool import FairAsyncQueuePool
from taskgate.db.sqlite import inline_connector


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@dataclass(frozen=True)
class PoolOptions:
    size: int = 10
    max_overflow: int = 10
    timeout: float = 2.0  # waiting for a pooled connection
    connect_timeout: float = 2.0
    statement_timeout: float = 10.0


def create_engine(url: str, pool: PoolOptions | None = None) -> AsyncEngine:
    """An engine for ``url``. Every wait is bounded, so an unreachable database turns into
    a prompt error (answered 503) instead of a hanging request."""
    pool = pool or PoolOptions()
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process: SQLite takes one writer at a time, and connections
        # competing for its lock sleep in its busy handler (throughput collapses under
        # concurrency). Queued in the pool instead, requests are served in order.
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=pool.timeout,
            poolclass=FairAsyncQueuePool,
            async_creator=inline_connector(parsed.database or ":memory:"),
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {
            "timeout": pool.connect_timeout,
            "command_timeout": pool.statement_timeout + 1,
            "server_settings": {"statement_timeout": str(int(pool.statement_timeout * 1000))},
        }
    return create_async_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_timeout=pool.timeout,
        poolclass=FairAsyncQueuePool,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
