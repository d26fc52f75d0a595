"""The embedded SQLite connection: statements run on the event loop's own thread.

aiosqlite runs every call (cursor, execute, fetch, close, commit, ...) on a helper thread
and hands the result back to the loop. That hand-off is a GIL transfer between two busy
threads; under concurrent requests it costs far more than the statement itself, and it
capped the server's heartbeat rate (before and after: docs/performance.md, "What made it
fast").

SQLite on a local file in WAL mode answers in microseconds, so here each call runs
directly on the loop thread, with SQLite's busy timeout set to zero. Only when another
*process* holds the write lock (the CLI, a second server worker) does SQLite answer
"database is locked"; that call is then repeated on aiosqlite's helper thread with the
configured busy timeout, so the wait for the other process never blocks the event loop.
A statement that got SQLITE_BUSY made no change, so repeating it is safe.

The subclass overrides aiosqlite's single dispatch point (``Connection._execute``); the
tests in ``tests/db/test_sqlite_inline.py`` pin that statements run inline and that the
locked case waits off the loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import aiosqlite


def _is_locked(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or (
        "database is locked" in str(exc)
    )


class InlineSQLiteConnection(aiosqlite.Connection):
    """An aiosqlite connection whose calls run on the calling (event loop) thread."""

    def __init__(self, connector: Callable[[], sqlite3.Connection], busy_timeout_ms: int) -> None:
        super().__init__(connector, iter_chunk_size=64)
        self._busy_timeout_ms = busy_timeout_ms
        self._in_thread = 0  # calls queued on the helper thread and not yet finished there
        self._pending_lock = threading.Lock()
        self._stop_queued = False
        self._thread_end: asyncio.Future | None = None
        self._thread.daemon = True  # never keep the process alive at exit

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        if self._in_thread:
            # A call is waiting for the lock on the helper thread (its request may even have
            # been cancelled meanwhile): everything after it (a rollback, the close at
            # shutdown) queues behind it there, in order, instead of blocking the loop.
            return await self._on_thread(fn, *args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except sqlite3.OperationalError as exc:
            if not _is_locked(exc):
                raise
        return await self._on_thread(self._waiting, partial(fn, *args, **kwargs))

    async def run(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn(sqlite3_connection)`` as one call (inline, or waiting for another process's
        lock on the helper thread): several statements for the price of one hand-off."""
        return await self._execute(fn, self._conn)

    async def _on_thread(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        # Counted until the helper thread has finished the call, not until its awaiter
        # stops waiting: a cancelled request leaves the call running there, and nothing may
        # touch the connection from the loop thread meanwhile.
        with self._pending_lock:
            self._in_thread += 1

        def call() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._pending_lock:
                    self._in_thread -= 1

        return await super()._execute(call)

    def stop(self) -> asyncio.Future | None:
        # The helper thread ends at the first stop it runs, so a second stop queued behind
        # it would never run and its future never resolve. SQLAlchemy stops twice when a
        # cancelled connection's graceful close is itself cancelled (the exit of
        # ``asyncio.run`` after a graceful shutdown cancelled a request): it force-stops,
        # then the close's own ``finally`` stops again and awaits that. Only the first stop
        # is queued; a later one waits for the same end of the thread.
        if not self._stop_queued:
            self._stop_queued = True
            self._thread_end = super().stop()
            return self._thread_end
        return None if self._thread_end is None else asyncio.shield(self._thread_end)

    def _waiting(self, call: Callable[[], Any]) -> Any:
        """On the helper thread: the call again, allowed to wait for the lock."""
        conn = self._conn
        conn.execute(f"PRAGMA busy_timeout={self._busy_timeout_ms}")
        try:
            return call()
        finally:
            conn.execute("PRAGMA busy_timeout=0")


def inline_connector(path: str, *, busy_timeout_ms: int = 5000) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy's aiosqlite dialect."""

    async def connect() -> InlineSQLiteConnection:
        # The sqlite3 connection is made on the helper thread and used on the loop thread;
        # it never waits for a lock there (timeout=0: busy timeout zero), see _execute.
        connector = partial(sqlite3.connect, path, check_same_thread=False, timeout=0)
        return await InlineSQLiteConnection(connector, busy_timeout_ms)

    return connect
