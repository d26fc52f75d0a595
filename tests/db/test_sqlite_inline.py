"""The embedded SQLite connection runs statements on the event loop's thread, and waits for
another process's lock off that thread (``taskgate.db.sqlite``)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from sqlalchemy import event, text

from taskgate.db.session import create_engine


def _engine_with_thread_probe(path: Path):
    engine = create_engine(f"sqlite+aiosqlite:///{path}")

    @event.listens_for(engine.sync_engine, "connect")
    def add_probe(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.create_function("thread_id", 0, threading.get_ident)

    return engine


async def _write_waiting_for_another_connection(path: Path):  # type: ignore[no-untyped-def]
    """An engine on a new database, another connection holding its write lock (as
    another process would), and a write through the engine that will wait for it."""
    engine = _engine_with_thread_probe(path)
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE t (v INTEGER)"))
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    async def write() -> None:
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES (2)"))

    return engine, other, write


async def test_statements_run_on_the_event_loop_thread(tmp_path: Path) -> None:
    engine = _engine_with_thread_probe(tmp_path / "inline.db")
    try:
        async with engine.connect() as conn:
            ran_on = (await conn.execute(text("SELECT thread_id()"))).scalar_one()
        assert ran_on == threading.get_ident()
    finally:
        await engine.dispose()


async def test_a_lock_held_by_another_connection_is_waited_for_off_the_loop(
    tmp_path: Path,
) -> None:
    path = tmp_path / "locked.db"
    engine = _engine_with_thread_probe(path)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE TABLE t (v INTEGER)"))
        # Another connection (as another process would) takes the write lock.
        other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")
        other.execute("INSERT INTO t VALUES (1)")

        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        async def write() -> object:
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES (2)"))
                return (await conn.execute(text("SELECT thread_id()"))).scalar_one()

        ticking = asyncio.create_task(ticker())
        writing = asyncio.create_task(write())
        await asyncio.sleep(0.5)
        assert not writing.done(), "the write did not wait for the lock"
        # The loop kept running while the write waited: it was not blocked by SQLite.
        assert ticks >= 20
        other.execute("COMMIT")  # release: the waiting write goes through
        started = time.monotonic()
        await asyncio.wait_for(writing, 5)
        assert time.monotonic() - started < 2
        ticking.cancel()
        other.close()

        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT v FROM t ORDER BY v"))).scalars().all()
            # With the lock gone, statements run on the loop thread again.
            assert (await conn.execute(text("SELECT thread_id()"))).scalar_one() == (
                threading.get_ident()
            )
        assert rows == [1, 2]
    finally:
        await engine.dispose()


async def test_a_cancelled_wait_leaves_the_connection_to_the_helper_thread(tmp_path: Path) -> None:
    """A request cancelled while its statement waits for the lock (e.g. at the end of a
    graceful shutdown): the rollback and close queue behind the statement on the helper
    thread instead of touching the connection from the loop, and nothing is written."""
    path = tmp_path / "cancelled.db"
    engine, other, write = await _write_waiting_for_another_connection(path)

    writing = asyncio.create_task(write())
    await asyncio.sleep(0.2)
    writing.cancel()
    await asyncio.sleep(0.1)
    other.execute("COMMIT")  # the statement on the helper thread now goes through ...
    other.close()
    try:
        await asyncio.wait_for(writing, 5)
    except asyncio.CancelledError:
        pass
    await asyncio.wait_for(engine.dispose(), 5)  # ... and the close waits for it there
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)  # rolled back
    check.close()


async def test_cancelling_every_task_while_a_cancelled_wait_closes_does_not_hang(
    tmp_path: Path,
) -> None:
    """At exit ``asyncio.run`` cancels every task left, after a graceful shutdown already
    cancelled the request: SQLAlchemy then force-stops the connection while its graceful
    close still waits behind the statement, and that close stops it a second time. The
    second stop must not wait for a helper thread that the first one already ended."""
    path = tmp_path / "exit.db"
    existing = asyncio.all_tasks()
    engine, other, write = await _write_waiting_for_another_connection(path)

    writing = asyncio.create_task(write())
    await asyncio.sleep(0.2)
    writing.cancel()  # the grace period is over: SQLAlchemy starts closing the connection
    await asyncio.sleep(0.1)
    left = asyncio.all_tasks() - existing - {asyncio.current_task()}
    assert len(left) >= 2  # the request and SQLAlchemy's shielded close
    for task in left:
        task.cancel()  # what asyncio.run does with the tasks left at exit
    await asyncio.sleep(0.1)
    other.execute("COMMIT")
    other.close()
    _, pending = await asyncio.wait(left, timeout=5)
    assert not pending, pending
    await asyncio.wait_for(engine.dispose(), 5)
    check = sqlite3.connect(path)
    assert check.execute("SELECT count(*) FROM t").fetchone() == (0,)
    check.close()
