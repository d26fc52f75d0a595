"""SIGTERM to `taskgate serve` while a request is in flight.

The slow request is real: the test holds a write lock on the task instance's row (on
SQLite: the database's write lock) in its own transaction, so the server's heartbeat
UPDATE waits for it. Meanwhile the server is told to stop.
"""

from __future__ import annotations

import asyncio
import signal
import time

import httpx
import pytest

from taskgate.db import fast_paths
from tests.integration.db_locks import row_locked
from tests.support.api import BEAT_BODY, RUN_BODY, bearer
from tests.support.database import fresh_ti
from tests.support.processes import free_port, serve_env, server_output, start_serve

pytestmark = pytest.mark.integration


async def running_ti(http: httpx.AsyncClient, factory) -> tuple[object, dict[str, str]]:
    ti = await factory.queued_ti()
    run = await http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(ti.workload_token))
    assert run.status_code == 200, run.text
    return ti, bearer(run.headers["Refreshed-API-Token"])


def waiting_env(settings) -> dict[str, str]:
    # These requests wait for a lock for as long as the test holds it, past the request
    # deadline that would otherwise answer them 503 database_timeout first.
    return {**serve_env(settings), "TASKGATE_DB_REQUEST_DEADLINE": "30"}


async def test_sigterm_lets_the_request_in_flight_finish_and_exits_0(settings, runtime, factory):
    port = free_port()
    server = start_serve(waiting_env(settings), port)
    base = f"http://127.0.0.1:{port}/execution"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:
            ti, token = await running_ti(http, factory)
            before = (await fresh_ti(runtime, ti.id)).last_heartbeat_at
            async with row_locked(runtime, ti.id):
                beat = asyncio.create_task(
                    http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)
                )
                await asyncio.sleep(0.5)  # the heartbeat waits for the lock
                assert not beat.done()
                server.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                # Shutdown has started: the listening socket is closed, new connections are
                # refused, while the heartbeat is still in flight.
                with pytest.raises(httpx.ConnectError):
                    async with httpx.AsyncClient(timeout=2) as fresh:
                        await fresh.get(f"{base}/health/ping")
                assert not beat.done() and server.poll() is None
            stopping = time.monotonic()
            answered = await beat
        assert answered.status_code == 204, answered.text
        assert server.wait(10) == 0, server_output(server)
        assert time.monotonic() - stopping < 10
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    after = await fresh_ti(runtime, ti.id)
    assert after.last_heartbeat_at > before  # the finished heartbeat was committed


async def test_a_request_outliving_the_grace_period_is_cancelled_without_a_write(
    settings, runtime, factory
):
    if runtime.settings.uses_embedded_database and not fast_paths.enabled(runtime.engine):
        # aiosqlite as shipped: closing the cancelled request's connection stops its thread
        # twice, the second stop never completes, and the stop hangs until the process is
        # killed (InlineSQLiteConnection.stop is the fast path's fix; docs/operations.md).
        pytest.skip("SQLite on the public paths: see docs/operations.md")
    port = free_port()
    server = start_serve(waiting_env(settings), port, "--timeout-graceful-shutdown", "1")
    base = f"http://127.0.0.1:{port}/execution"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=15) as http:
            ti, token = await running_ti(http, factory)
            before = await fresh_ti(runtime, ti.id)
            async with row_locked(runtime, ti.id):
                report = asyncio.create_task(
                    http.patch(f"/task-instances/{ti.id}/state", headers=token,
                               json={"state": "success", "end_date": "2026-01-01T00:05:00Z"})
                )
                await asyncio.sleep(0.5)
                stopping = time.monotonic()
                server.send_signal(signal.SIGTERM)
                # Held past the grace period: the server cancels the report and exits.
                code = await asyncio.to_thread(server.wait, 15)
                stopped = time.monotonic() - stopping
            # Uvicorn answers the cancelled request itself: a plain 500, connection closed.
            cancelled = await report
            assert (cancelled.status_code, cancelled.headers["connection"]) == (500, "close")
        assert code == 0, server_output(server)
        # The grace period, then the cancelled statement's wait for the lock (SQLite's 5 s
        # busy timeout) ends before its connection closes; plus slack for a busy machine.
        assert stopped < 1 + 5 + 2, stopped
        assert "timeout graceful shutdown exceeded" in server_output(server)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
    after = await fresh_ti(runtime, ti.id)
    assert (after.state, after.end_date) == ("running", before.end_date)  # nothing written
