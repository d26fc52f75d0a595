"""The event feed across crashes and replicas: `taskgate serve` processes killed with
SIGKILL between changes and started again, a follower that resumes with Last-Event-ID,
and on PostgreSQL two replicas (the follower on one, the writes on the other). The
follower must end with every event exactly once, in order: the table's own list."""

from __future__ import annotations

import signal
import threading
import time
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from taskgate.db.models import Event
from taskgate.runtime import Runtime
from taskgate.services import operators
from taskgate.services.operators import Role
from tests.support.api import RUN_BODY, SUCCESS_BODY, bearer
from tests.support.processes import ServeProcess, free_port, serve_env, server_output, start_serve
from tests.support.sse import Frame, frames

pytestmark = pytest.mark.integration

EVENTS = "/control/v1/events"
TASKS = [f"t{i}" for i in range(6)]


class Follower(threading.Thread):
    """Follows the feed from ``url``; when its stream breaks it resumes from ``url`` (which
    may have changed meanwhile) with Last-Event-ID, until it answers again."""

    def __init__(self, url: str, headers: dict[str, str], after: int) -> None:
        super().__init__(daemon=True)
        self.url, self.headers, self.last = url, headers, after
        self.frames: list[Frame] = []
        self.reconnects = 0
        self.stopped = threading.Event()
        self._response: httpx.Response | None = None

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                with httpx.stream(
                    "GET", self.url + EVENTS, headers={**self.headers, "Last-Event-ID": str(self.last)},
                    timeout=httpx.Timeout(5, read=30),
                ) as response:
                    self._response = response
                    if response.status_code == 200:
                        for frame in frames(response):
                            self.frames.append(frame)
                            self.last = frame.id
            except (httpx.HTTPError, RuntimeError):
                pass  # killed under us (or closed by stop): resume elsewhere
            self.reconnects += 1
            time.sleep(0.1)

    def wait_for(self, count: int, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while len(self.frames) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def move_to(self, url: str) -> None:
        """Drop the current stream and resume from ``url``."""
        self.url = url
        if self._response is not None:
            self._response.close()

    def stop(self) -> None:
        self.stopped.set()
        if self._response is not None:
            self._response.close()


class Replica:
    def __init__(self, env: dict[str, str]) -> None:
        self.env, self.port = env, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: ServeProcess | None = None

    def start(self) -> None:
        self.process = start_serve(self.env, self.port)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(15)


async def _admin(runtime: Runtime) -> dict[str, str]:
    async with runtime.sessionmaker() as session:
        return bearer((await operators.add_operator(session, "orchestrator", Role.ADMIN)).key)


async def _stored(runtime: Runtime, after: int) -> list[tuple[int, str]]:
    async with runtime.sessionmaker() as session:
        rows = await session.execute(select(Event.id, Event.kind).where(Event.id > after).order_by(Event.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


def _lifecycle(http: httpx.Client, ti_id: str) -> None:
    """Queue (control API), start and finish (Execution API) one TI, revoke its tokens."""
    queued = http.post(f"/control/v1/task-instances/{ti_id}/queue")
    assert queued.status_code == 200, queued.text
    token = queued.json()["token"]
    run = http.patch(f"/execution/task-instances/{ti_id}/run", json=RUN_BODY, headers=bearer(token))
    assert run.status_code == 200, run.text
    execution = bearer(run.headers["Refreshed-API-Token"])
    done = http.patch(f"/execution/task-instances/{ti_id}/state", json=SUCCESS_BODY, headers=execution)
    assert done.status_code == 204, done.text
    assert http.post(f"/control/v1/task-instances/{ti_id}/revoke-tokens").status_code == 200


async def test_a_follower_sees_every_change_once_across_kills_and_replicas(settings, runtime):
    admin = await _admin(runtime)
    env = serve_env(settings)
    # On PostgreSQL two replicas: the writes go to one, the follower reads the other.
    replicas = [Replica(env), Replica(env)] if settings.database_url else [Replica(env)]
    for replica in replicas:
        replica.start()
    writer, reader = replicas[0], replicas[-1]
    start = (await _stored(runtime, 0))[-1][0]
    follower = Follower(reader.url, admin, after=start)
    follower.start()
    kills = 0
    try:
        def write(replica: Replica, work: Any) -> None:
            with httpx.Client(base_url=replica.url, headers=admin, timeout=10) as http:
                work(http)

        created: dict[str, Any] = {}

        def make_run(http: httpx.Client) -> None:
            assert http.put("/control/v1/dags/feed", json={}).status_code == 200
            answer = http.post("/control/v1/dags/feed/runs", json={"run_id": "r", "tasks": TASKS})
            assert answer.status_code == 201, answer.text
            created["ids"] = [ti["id"] for ti in answer.json()["task_instances"]]

        write(writer, make_run)
        for number, ti_id in enumerate(created["ids"]):
            write(writer, lambda http, ti_id=ti_id: _lifecycle(http, ti_id))
            if number % 2 == 1:
                # A crash between changes: the follower's replica, or the only one.
                reader.kill()
                kills += 1
                reader.start()
            if number == 3 and len(replicas) == 2:
                # The writes move to the other replica, and the one written to so far dies.
                writer.kill()
                kills += 1
                writer, reader = reader, writer
                reader.start()
                follower.move_to(reader.url)
        stored = await _stored(runtime, start)
        follower.wait_for(len(stored))
    finally:
        follower.stop()
        for replica in replicas:
            replica.stop()
    got = [(f.id, f.event) for f in follower.frames]
    assert len(stored) == 2 + len(TASKS) * 5  # dag.put, run.create; per TI 5 changes
    assert got == stored, f"follower got {len(got)} of {len(stored)} after {kills} kills"
    assert follower.reconnects >= kills


async def test_a_stop_signal_ends_open_streams_at_once(settings, runtime):
    admin = await _admin(runtime)
    replica = Replica(serve_env(settings))
    replica.start()
    follower = Follower(replica.url, admin, after=0)
    follower.start()
    follower.wait_for(1)
    assert follower.frames, "the follower got the backlog"
    stopping = time.monotonic()
    assert replica.process is not None
    replica.process.send_signal(signal.SIGTERM)
    code = replica.process.wait(15)
    stopped_after = time.monotonic() - stopping
    follower.stop()
    assert code == 0, server_output(replica.process)
    # Without ending the stream, the stop would wait the whole grace period (20 s).
    assert stopped_after < 5, stopped_after
