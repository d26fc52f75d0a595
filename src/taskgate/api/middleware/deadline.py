"""One deadline for all of a request's database work.

A request waits on the database in several steps: a pooled connection, perhaps a new
connection, the pooled connection's liveness check, its statements. Each has a timeout
of its own, and when the network to the database stalls they add up (a liveness check
that times out, then the close of the dead connection, then a connect that times out).
Here the whole request runs under one deadline (``db_request_deadline``). When it passes
before the app has begun its answer, the client is answered 503 ``database_timeout``
with ``Retry-After`` at once, on the same keep-alive connection, and the request is
cancelled.

The answer does not wait for the cancelled request to clean up: that cleanup may itself
wait on the database (closing a connection whose statement still waits for another
process's SQLite lock queues behind that statement). It goes on in the background; what
it sends or raises is dropped.

The database is the only thing a request waits for, besides the client's own body: the
clock stops while the app waits for body bytes, so a slow client is not taken for a slow
database.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate.db.availability import Fault


class DeadlineMiddleware:
    def __init__(self, app: ASGIApp, seconds: float, on_timeout: Callable[[Scope], None]) -> None:
        self.app = app
        self.seconds = seconds
        self.on_timeout = on_timeout
        fault = Fault.TIMEOUT
        body = json.dumps({"detail": {"reason": fault, "message": fault.message}}).encode()
        self._start: Message = {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(fault.retry_after).encode()),
            ],
        }
        self._body: Message = {"type": "http.response.body", "body": body}
        self._answers: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(self, scope, send)
        try:
            await self.app(scope, request.receive(receive), request.send)
        except BaseException:
            if not request.expired() or request.cancelled_by_others():
                raise
            # Answered at the deadline: the cancelled request's own end is dropped.
        finally:
            request.settle()
        if request.answer is not None:
            # Returning ends the request: the server would answer 500 for an app that
            # returned without starting its answer.
            await request.answer

    def respond(self, send: Send) -> asyncio.Task[None]:
        """Send the 503 from a task of its own: the request's task is busy cleaning up."""

        async def respond() -> None:
            await send(self._start)
            await send(self._body)

        task = asyncio.get_running_loop().create_task(respond())
        self._answers.add(task)
        task.add_done_callback(self._answers.discard)
        return task


class _Request:
    """One request's deadline: a timer that answers and cancels, paused while the app
    waits for the client's body."""

    def __init__(self, middleware: DeadlineMiddleware, scope: Scope, send: Send) -> None:
        self._middleware = middleware
        self._scope = scope
        self._send = send
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        self._started = False  # the app began its answer
        self._fired = False
        self._uncancelled = False
        self.answer: asyncio.Task[None] | None = None  # the 503, once the deadline passed
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            middleware.seconds, self._expire
        )

    def expired(self) -> bool:
        return self._fired

    def _expire(self) -> None:
        self._timer = None
        if self._started:
            return  # the database work is done; the answer is on its way
        self._fired = True
        self._middleware.on_timeout(self._scope)
        self.answer = self._middleware.respond(self._send)
        assert self._task is not None
        self._task.cancel()

    async def send(self, message: Message) -> None:
        if self._fired:
            return  # already answered 503
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)

    def receive(self, receive: Receive) -> Receive:
        async def receiving() -> Message:
            if self._timer is None:
                return await receive()
            remaining = self._timer.when() - self._loop.time()
            self._timer.cancel()  # the client's time, not the database's
            self._timer = None
            try:
                return await receive()
            finally:
                if not self._fired and not self._started:
                    self._timer = self._loop.call_later(max(remaining, 0), self._expire)

        return receiving

    def cancelled_by_others(self) -> bool:
        """Take back our cancel; whether a cancel of someone else's (a shutdown) remains."""
        assert self._task is not None
        self._uncancelled = True
        return self._task.uncancel() > 0

    def settle(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._fired and not self._uncancelled:
            self.cancelled_by_others()  # the app swallowed our cancel and ended normally
