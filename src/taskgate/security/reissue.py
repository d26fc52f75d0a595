"""Token re-issue: a pure ASGI middleware that hands out fresh execution tokens.

When an authorized request's execution token has less than 20 % of its lifetime left
(at least 30 s), the response carries a new token with the same subject, scope and key
binding (``cnf.jkt``) in ``Refreshed-API-Token``. It reuses the token that bearer validation cached on the ASGI
scope: no second signature check. Workload tokens and refused requests get nothing, and
neither does a token whose TI has ended or was revoked (``Lifecycle.reissue``, which also
notes the new token's expiry on the TI).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate.security.request_auth import AuthState, auth_of
from taskgate.services.lifecycle import Lifecycle
from taskgate.tokens import TaskToken, TokenType
from taskgate.wire.http import REFRESHED_TOKEN_HEADER, asgi_name

REFRESH_HEADER = asgi_name(REFRESHED_TOKEN_HEADER)
REFRESH_FRACTION = 0.20
REFRESH_MIN_SECONDS = 30


def needs_refresh(token: TaskToken, now: float) -> bool:
    if token.token_type is not TokenType.EXECUTION:
        return False
    threshold = max(token.lifetime * REFRESH_FRACTION, REFRESH_MIN_SECONDS)
    return token.exp - now < threshold


class TokenReissueMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        lifecycle: Callable[[], Lifecycle | None],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.lifecycle = lifecycle
        self.clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_refresh(message: Message) -> None:
            if message["type"] == "http.response.start":
                await self._maybe_refresh(scope, message)
            await send(message)

        await self.app(scope, receive, send_with_refresh)

    async def _maybe_refresh(self, scope: Scope, message: Message) -> None:
        auth = auth_of(scope)
        if auth is None or auth.state is not AuthState.AUTHORIZED or message["status"] in (401, 403):
            return
        if not needs_refresh(auth.token, self.clock()):
            return
        headers = message.get("headers", [])
        if any(name.lower() == REFRESH_HEADER for name, _ in headers):
            return  # the handler already issued one (the /run exchange)
        lifecycle = self.lifecycle()
        fresh = None if lifecycle is None else await lifecycle.reissue(auth.token)
        if fresh is None:
            return  # the TI has ended, the token was revoked, or this node cannot sign
        message["headers"] = [*headers, (REFRESH_HEADER, fresh.encode("ascii"))]
