"""Clients that go away mid-request: the server keeps serving, writes all of a request or
none of it, and gives every pooled connection back. Raw sockets to a real server."""

from __future__ import annotations

import asyncio
import json

import httpx
import jwt
import pytest
from sqlalchemy import func, select

from taskgate.db.models import TaskInstance, UsedWorkloadToken
from tests.integration.db_locks import row_locked
from tests.support.api import BEAT_BODY, RUN_BODY, bearer, gauge

pytestmark = pytest.mark.integration


def raw_request(method: str, path: str, token: str, body: bytes, *, length: int | None = None) -> bytes:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length or len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def send_and_hang_up(url: str, data: bytes, *, linger: float = 0.2) -> None:
    """Connect, send ``data``, wait ``linger`` seconds, close without reading."""
    host, port = url.removeprefix("http://").split(":")
    _reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(data)
    await writer.drain()
    await asyncio.sleep(linger)
    writer.close()
    await writer.wait_closed()


async def pool_settles(http: httpx.AsyncClient) -> None:
    """No pooled connection stays checked out (within a second)."""
    for _ in range(20):
        metrics = (await http.get("/metrics")).text
        if gauge(metrics, "taskgate_db_pool_checked_out") == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("a pooled database connection stays checked out")


async def standing(runtime, ti_id, jti: str) -> tuple[str, int]:
    """The TI's state and whether its workload token was spent."""
    async with runtime.sessionmaker() as session:
        state = (await session.get(TaskInstance, ti_id)).state
        spent = (await session.execute(
            select(func.count()).select_from(UsedWorkloadToken).where(UsedWorkloadToken.jti == jti)
        )).scalar_one()
    return state, spent


def jti_of(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["jti"]


async def test_half_a_body_then_gone(live_server, factory, runtime):
    ti = await factory.queued_ti()
    path = f"/execution/task-instances/{ti.id}/run"
    body = json.dumps(RUN_BODY).encode()
    for _ in range(5):
        await send_and_hang_up(
            live_server.url, raw_request("PATCH", path, ti.workload_token, body[: len(body) // 2], length=len(body))
        )
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        await pool_settles(http)
        assert await standing(runtime, ti.id, jti_of(ti.workload_token)) == ("queued", 0)
        # Nothing happened: the workload token still starts the TI, and it heartbeats.
        run = await http.patch(path, json=RUN_BODY, headers=bearer(ti.workload_token))
        assert run.status_code == 200, run.text
        beat = await http.put(f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY,
                              headers=bearer(run.headers["Refreshed-API-Token"]))
        assert beat.status_code == 204


async def test_gone_while_the_request_is_processed(live_server, factory, runtime):
    ti = await factory.queued_ti()
    path = f"/execution/task-instances/{ti.id}/run"
    jti = jti_of(ti.workload_token)
    async with row_locked(runtime, ti.id):  # the /run waits for the TI's row ...
        await send_and_hang_up(
            live_server.url, raw_request("PATCH", path, ti.workload_token, json.dumps(RUN_BODY).encode()),
            linger=0.5,
        )  # ... and its client hangs up meanwhile
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        await pool_settles(http)
        # Uvicorn does not cancel a request whose client left: the /run finished, whole
        # (TI running and its token spent together), and only the answer was lost.
        assert await standing(runtime, ti.id, jti) == ("running", 1)
        replay = await http.patch(path, json=RUN_BODY, headers=bearer(ti.workload_token))
        assert replay.status_code == 409 and replay.json()["detail"]["reason"] == "token_reused"
        # The server goes on serving others.
        other = await factory.queued_ti(task_id="other")
        run = await http.patch(f"/execution/task-instances/{other.id}/run", json=RUN_BODY,
                               headers=bearer(other.workload_token))
        assert run.status_code == 200, run.text
