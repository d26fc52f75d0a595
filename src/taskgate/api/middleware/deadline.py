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

A commit is never cut off (``taskgate.request_deadline``): the deadline waits for a
commit on the wire, and a request whose change landed runs to its answer.

The database is the only thing a request waits for, besides the client's own body: the
clock stops while the app waits for body bytes, so a slow client is not taken for a slow
database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate import request_deadline
from taskgate.api.errors import database_fault_answer
from taskgate.db.availability import Fault


class DeadlineMiddleware:
    def __init__(self, app: ASGIApp, seconds: float, on_timeout: Callable[[Scope], None]) -> None:
        self.app = app
        self.seconds = seconds
        self.on_timeout = on_timeout
        self.timeout_answer = database_fault_answer(Fault.TIMEOUT)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _Request(self, scope, receive, send)
        guard = request_deadline.guarded_by(request)
        try:
            await self.app(scope, request.receive(receive), request.send)
        except BaseException:
            if not request.expired() or request.cancelled_by_others():
                raise
            # Answered at the deadline: the cancelled request's own end is dropped.
        finally:
            request_deadline.release(guard)
            request.settle()
        if request.answer is not None:
            # Returning ends the request: the server would answer 500 for an app that
            # returned without starting its answer.
            await request.answer


class _Request:
    """One request's deadline: a timer that answers and cancels, paused while the app
    waits for the client's body."""

    def __init__(
        self, middleware: DeadlineMiddleware, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self._middleware = middleware
        self._scope = scope
        self._receive = receive
        self._send = send
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        # The app began its answer, or a change committed (the answer must tell it): no
        # deadline from here on.
        self._settled = False
        self._holding = False  # a commit is on the wire
        self._overdue = False  # the deadline passed while it was
        self._uncancelled = False
        # The 503, sent once the deadline passed, from a task of its own: the request's
        # task is busy cleaning up.
        self.answer: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = self._loop.call_later(
            middleware.seconds, self._expire
        )

    def expired(self) -> bool:
        return self.answer is not None

    def hold(self) -> None:
        self._holding = True

    def release(self, committed: bool) -> None:
        """After a commit (``taskgate.request_deadline``): none landed, so a deadline that
        passed meanwhile answers now; or one did, and the request runs to its answer."""
        self._holding = False
        if committed:
            self._settled = True
            self._stop_clock()
        elif self._overdue:
            self._answer_timeout()  # no cancel: the request is already unwinding

    def _expire(self) -> None:
        self._timer = None
        if self._settled:
            return  # the database work is done; the answer is on its way
        if self._holding:
            self._overdue = True  # a commit is on the wire: its outcome decides
            return
        self._answer_timeout()
        assert self._task is not None
        self._task.cancel()

    def _answer_timeout(self) -> None:
        self._middleware.on_timeout(self._scope)
        respond = self._middleware.timeout_answer(self._scope, self._receive, self._send)
        self.answer = self._loop.create_task(respond)

    async def send(self, message: Message) -> None:
        if self.expired():
            return  # already answered 503
        if message["type"] == "http.response.start":
            self._settled = True
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
                if not self.expired() and not self._settled:
                    self._timer = self._loop.call_later(max(remaining, 0), self._expire)

        return receiving

    def cancelled_by_others(self) -> bool:
        """Take back our cancel; whether a cancel of someone else's (a shutdown) remains."""
        assert self._task is not None
        self._uncancelled = True
        return self._task.uncancel() > 0

    def _stop_clock(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def settle(self) -> None:
        self._stop_clock()
        if self.expired() and not self._uncancelled:
            self.cancelled_by_others()  # the app swallowed our cancel and ended normally
