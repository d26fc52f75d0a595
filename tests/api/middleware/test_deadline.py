"""The request deadline, on a real server (uvicorn on 127.0.0.1): 503 database_timeout
at the deadline, without waiting for the cancelled request's cleanup, on a keep-alive
connection that stays usable; the clock stops while the client sends its body."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from taskgate import request_deadline
from taskgate.api.middleware.deadline import DeadlineMiddleware
from tests.support.asgi_server import serving
from tests.support.keep_alive import KeepAliveConnection

DEADLINE = 0.2


class SlowApp:
    """Waits ``wait`` seconds (the database), then answers 200; a cancelled request
    spends ``cleanup`` more seconds before it ends (closing a connection, say)."""

    def __init__(
        self, wait: float, cleanup: float = 0.0, *, commits_first: bool = False,
        commit_fails: bool = False,
    ) -> None:
        self.wait, self.cleanup = wait, cleanup
        # A change commits before the wait, taking longer than the deadline (and fails).
        self.commits_first, self.commit_fails = commits_first, commit_fails
        self.cancelled = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if self.commits_first:
            async with request_deadline.committing():
                await asyncio.sleep(DEADLINE * 1.5)
                if self.commit_fails:
                    raise ConnectionResetError("the database went away mid-commit")
        try:
            await asyncio.sleep(self.wait)
        except asyncio.CancelledError:
            self.cancelled.set()
            await asyncio.shield(asyncio.sleep(self.cleanup))
            raise
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok:" + body})


@contextmanager
def served(app: SlowApp, timeouts: list[Scope]) -> Iterator[KeepAliveConnection]:
    wrapped = DeadlineMiddleware(app, seconds=DEADLINE, on_timeout=timeouts.append)
    with serving(wrapped) as url:
        host, port = url.removeprefix("http://").split(":")
        yield KeepAliveConnection(host, int(port))


@pytest.mark.parametrize("cleanup", [0.0, 1.0])
async def test_work_past_the_deadline_is_answered_503_at_the_deadline(cleanup: float) -> None:
    # The cancelled request ends at once, or only after a second: the 503 is the answer
    # either way, and it does not wait for the cleanup.
    app, timeouts = SlowApp(wait=5, cleanup=cleanup), []
    with served(app, timeouts) as connection:
        async with connection:
            answer = await connection.request("GET", "/execution/variables/x")
            assert answer.status == 503
            assert answer.reason == "database_timeout"
            assert answer.headers["retry-after"] == "1"
            assert DEADLINE <= answer.elapsed < DEADLINE + 0.5  # not after the cleanup
            # The same connection serves the next request once the cleanup is over.
            app.wait = 0.0
            again = await connection.request("GET", "/y")
            assert (again.status, again.body) == (200, b"ok:")
    assert app.cancelled.is_set()
    assert [scope["path"] for scope in timeouts] == ["/execution/variables/x"]


async def test_work_within_the_deadline_is_untouched() -> None:
    app, timeouts = SlowApp(wait=0.01), []
    with served(app, timeouts) as connection:
        async with connection:
            answer = await connection.request("POST", "/x", json_body="body")
    assert (answer.status, answer.body, timeouts) == (200, b'ok:"body"', [])


async def test_a_commit_is_not_cut_off_and_its_request_runs_to_its_answer() -> None:
    # A 503 "try again" would lie about a change that landed (for /run: the workload token
    # spent, the execution token lost).
    app, timeouts = SlowApp(wait=DEADLINE, commits_first=True), []
    with served(app, timeouts) as connection:
        async with connection:
            answer = await connection.request("GET", "/execution/task-instances/x/run")
    assert (answer.status, answer.body, timeouts) == (200, b"ok:", [])
    assert answer.elapsed >= DEADLINE * 2.5
    assert not app.cancelled.is_set()


async def test_a_deadline_that_passed_during_a_failed_commit_answers_once_it_fails() -> None:
    app, timeouts = SlowApp(wait=0, commits_first=True, commit_fails=True), []
    with served(app, timeouts) as connection:
        async with connection:
            answer = await connection.request("GET", "/execution/task-instances/x/run")
    assert (answer.status, answer.reason) == (503, "database_timeout")
    assert DEADLINE * 1.5 <= answer.elapsed < DEADLINE * 1.5 + 0.5
    assert len(timeouts) == 1


async def test_the_clock_stops_while_the_client_sends_its_body() -> None:
    app, timeouts = SlowApp(wait=0.05), []

    async def slow_body():
        for part in (b"a", b"b", b"c"):
            await asyncio.sleep(DEADLINE)  # three deadlines in all
            yield part

    with served(app, timeouts) as connection:
        async with httpx.AsyncClient(base_url=f"http://{connection.host}:{connection.port}") as http:
            answer = await http.post("/x", content=slow_body())
    assert (answer.status_code, answer.text, timeouts) == (200, "ok:abc", [])


async def test_a_cancel_from_outside_is_not_swallowed() -> None:
    app, timeouts = SlowApp(wait=5), []
    wrapped = DeadlineMiddleware(app, seconds=10, on_timeout=timeouts.append)

    async def send(message):
        pass

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "path": "/x", "method": "GET", "headers": []}
    task = asyncio.create_task(wrapped(scope, receive, send))
    await asyncio.sleep(0.05)
    task.cancel()  # a server shutting down
    try:
        await task
    except asyncio.CancelledError:
        pass
    else:
        raise AssertionError("the shutdown's cancel was swallowed")
    assert timeouts == []
