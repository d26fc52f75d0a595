"""The access log: one ``http.request`` event per answered request, in the server's log
format, instead of uvicorn's plain-text access line.

It names the route by its template (as the metrics do) and the request's path without
the query string, never headers: tokens and secrets stay out of the log. The reason comes
from the ``Taskgate-Reason`` answer header, which every refusal and problem answer carries,
the control API's included. Inside the correlation-id middleware, so the event carries the
request's ``correlation_id`` (and, with tracing, its trace ids) like every other event.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate.api.metrics import route_template
from taskgate.logs import ACCESS_LOGGER
from taskgate.wire.http import REASON_HEADER, asgi_name

EVENT = "http.request"
REASON = asgi_name(REASON_HEADER)

log = structlog.get_logger(ACCESS_LOGGER)
# `taskgate serve --no-access-log` turns this logger off; asked first, so that a request
# then costs no event at all.
switch = logging.getLogger(ACCESS_LOGGER)


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, routes: Callable[[], dict[int, str]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not switch.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = scope["path"]  # before routing: the full path, mounts included
        status = 500  # what the client sees if the app fails before answering
        reason: bytes | None = None

        async def observe(message: Message) -> None:
            nonlocal status, reason
            if message["type"] == "http.response.start":
                status = message["status"]
                reason = next((v for k, v in message.get("headers", []) if k == REASON), None)
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            client = scope.get("client")
            log.info(
                EVENT,
                method=scope["method"],
                route=route_template(self.routes(), scope),
                path=path,
                status=status,
                duration_ms=round((time.perf_counter() - started) * 1000, 3),
                client=f"{client[0]}:{client[1]}" if client else None,
                **({"reason": reason.decode("latin-1")} if reason is not None else {}),
            )
