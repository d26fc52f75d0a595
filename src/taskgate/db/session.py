"""Engine and session factory. SQLite gets WAL and foreign keys and, with the fast paths
on (``taskgate.db.fast_paths``), statements that run on the event loop's thread (see
``taskgate.db.sqlite``, which also owns its busy timeout) and a pool that serves waiting
requests in order (``taskgate.db.pool``).

A pooled PostgreSQL connection is tested before each use, so a connection the server or
the network dropped while it sat in the pool is replaced instead of failing a request.
SQLAlchemy's own test for asyncpg (``pool_pre_ping``) takes three round trips (BEGIN, an
empty query, ROLLBACK: the transaction is there for PgBouncer, whose transaction mode
cannot take a prepared statement outside one). ``_ping_asyncpg`` sends ``SELECT 1`` alone
in the simple query protocol, which prepares nothing: one round trip, as safe behind
PgBouncer. It runs through the adapted connection's public ``run_async``; it is still
switched with the fast paths, so that with them off every pool behaves as SQLAlchemy
ships it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from taskgate import request_deadline
from taskgate.db import fast_paths
from taskgate.db.pool import FairAsyncQueuePool, TimedQueuePool
from taskgate.db.sqlite import inline_connector


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _mark_fresh(_dbapi_connection: Any, record: Any) -> None:
    # The pool's own ``record.fresh`` is already cleared when checkout listeners run.
    record.info["taskgate.fresh"] = True


def _ping_asyncpg(timeout: float, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """At checkout: one query (a connection just made needs none). A connection that
    fails it, or does not answer within ``timeout``, is replaced by the pool, which raises
    if it cannot connect."""
    if record.info.pop("taskgate.fresh", False):
        return
    import asyncpg  # the engine's driver, loaded already; not imported for SQLite

    # What a dropped, reset or unresponsive connection raises (not a bug of ours: that raises).
    unusable = (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                OSError, TimeoutError)
    try:
        # No arguments: asyncpg sends it in the simple query protocol.
        dbapi_connection.run_async(lambda conn: conn.execute("SELECT 1", timeout=timeout))
    except unusable as exc:
        raise DisconnectionError(f"pooled connection failed its ping: {exc!r}") from exc


@dataclass(frozen=True)
class EngineOptions:
    size: int = 10
    max_overflow: int = 10
    overflow_idle_seconds: float = 30.0  # fair pool only (fast paths)
    timeout: float = 2.0  # waiting for a pooled connection
    connect_timeout: float = 2.0
    statement_timeout: float = 10.0
    fast_paths: bool = True  # see taskgate.db.fast_paths


def create_engine(url: str, pool: EngineOptions | None = None) -> AsyncEngine:
    """An engine for ``url``. Every wait is bounded, so an unreachable database turns into
    a prompt error (answered 503) instead of a hanging request."""
    pool = pool or EngineOptions()
    engine = _create_engine(url, pool)
    engine.sync_engine.update_execution_options(**{fast_paths.OPTION: pool.fast_paths})
    return engine


def _create_engine(url: str, pool: EngineOptions) -> AsyncEngine:
    parsed = make_url(url)
    pool_class = FairAsyncQueuePool if pool.fast_paths else TimedQueuePool
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # One connection per process: SQLite takes one writer at a time, and connections
        # competing for its lock sleep in its busy handler (throughput collapses under
        # concurrency). Queued in the pool instead, requests are served in order.
        inline = {"async_creator": inline_connector(parsed.database or ":memory:")}
        engine = create_async_engine(
            url,
            pool_size=1,
            max_overflow=0,
            pool_timeout=pool.timeout,
            poolclass=pool_class,
            **(inline if pool.fast_paths else {}),
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
    ping_asyncpg = parsed.get_driver_name() == "asyncpg" and pool.fast_paths
    lingering = {"overflow_idle_seconds": pool.overflow_idle_seconds} if pool.fast_paths else {}
    engine = create_async_engine(
        url,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        **lingering,
        pool_timeout=pool.timeout,
        poolclass=pool_class,
        pool_pre_ping=not ping_asyncpg,  # SQLAlchemy's own test
        connect_args=connect_args,
    )
    if ping_asyncpg:
        event.listen(engine.sync_engine, "connect", _mark_fresh)
        event.listen(engine.sync_engine, "checkout", partial(_ping_asyncpg, pool.connect_timeout))
    return engine


class _Session(AsyncSession):
    """A session whose commit the request's deadline never cuts off
    (``taskgate.request_deadline``)."""

    async def commit(self) -> None:
        async with request_deadline.committing():
            await super().commit()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, class_=_Session, expire_on_commit=False)
