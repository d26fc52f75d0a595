"""Admission control: past capacity, answer 503 ``overloaded`` at once instead of
queueing.

Requests beyond what the process can serve only wait in line, and every task's latency
grows together until heartbeats miss the server's deadline and healthy tasks are taken
for dead. Keeping the line short keeps the wait of those admitted short; the rest are
told at once (``Retry-After``; taskgate's client and worker retry with jitter).

The line is the requests in flight: admitted and waiting for the database (a pooled
connection, a statement; SQLite's one connection per process is where a storm queues).
At most ``max_requests_in_flight`` are admitted at a time.

A task's liveness comes first: heartbeats, state reports and ``/run`` are admitted up to
twice the bound, everything else up to the bound, so a storm of reads is shed while the
heartbeats that share the process go on. The count is per process; shedding costs one
comparison and a prebuilt answer, before any other middleware runs.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from taskgate.wire.http import EXECUTION_PREFIX, REASON_HEADER

OVERLOADED = {"reason": "overloaded", "message": "The server is at capacity; retry shortly"}

_LIVENESS = (("PUT", "/heartbeat"), ("PATCH", "/state"), ("PATCH", "/run"))
_TASK_INSTANCES = f"{EXECUTION_PREFIX}/task-instances/"


def is_liveness(method: str, path: str) -> bool:
    """A heartbeat, state report or start of a task instance."""
    return path.startswith(_TASK_INSTANCES) and any(
        method == m and path.endswith(suffix) for m, suffix in _LIVENESS
    )


class AdmissionMiddleware:
    def __init__(
        self, app: ASGIApp, limit: int, on_shed: Callable[[bool], None]
    ) -> None:
        self.app = app
        self.limit = limit
        self.on_shed = on_shed  # called with whether the shed request was a liveness one
        self.in_flight = 0
        # Built once: shedding costs no more than sending it.
        self._overloaded = JSONResponse(
            {"detail": OVERLOADED}, status_code=503,
            headers={"Retry-After": "1", REASON_HEADER: OVERLOADED["reason"]},
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(EXECUTION_PREFIX):
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.limit:
            liveness = is_liveness(scope["method"], scope["path"])
            if not liveness or self.in_flight >= 2 * self.limit:
                self.on_shed(liveness)
                await self._overloaded(scope, receive, send)
                return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
