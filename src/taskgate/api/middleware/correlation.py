"""Echo the ``correlation-id`` request header and bind it to the request's log lines."""

from __future__ import annotations

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate.wire.http import CORRELATION_ID_HEADER, asgi_name

HEADER = asgi_name(CORRELATION_ID_HEADER)
MAX_LENGTH = 200  # an id, not a payload: longer values are not echoed


class CorrelationIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = next((v for k, v in scope["headers"] if k == HEADER), None)
        if value is None or len(value) > MAX_LENGTH:
            await self.app(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, value)]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=value.decode("latin-1")):
            await self.app(scope, receive, send_with_id)
