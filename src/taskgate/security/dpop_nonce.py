"""Layer 1c, DPoP nonces (RFC 9449 §8): with ``TASKGATE_DPOP_REQUIRE_NONCE``, a proof
must carry a nonce a replica handed out recently (``tokens.nonces``), so proofs cannot
be signed in advance (by whoever can make the worker's key sign but cannot take it).

A proof without a good nonce is refused by ``security.dpop`` with 401
``use_dpop_nonce`` and the current nonce in ``DPoP-Nonce``; this middleware adds the
current nonce to every other answer to a request with a proof, so a client picks up the
next one before its own expires.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate.tokens.nonces import Nonces
from taskgate.wire.http import DPOP_HEADER, DPOP_NONCE_HEADER, asgi_name

_DPOP = asgi_name(DPOP_HEADER)
_NONCE = asgi_name(DPOP_NONCE_HEADER)


class DPoPNonceMiddleware:
    """Adds the current nonce to every answer of a request that carried a proof."""

    def __init__(self, app: ASGIApp, nonces: Callable[[], Nonces | None]) -> None:
        self.app = app
        self.nonces = nonces

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        nonces = self.nonces() if scope["type"] == "http" else None
        if nonces is None or not any(name == _DPOP for name, _ in scope["headers"]):
            await self.app(scope, receive, send)
            return

        async def send_with_nonce(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0].lower() != _NONCE]
                message["headers"] = [*headers, (_NONCE, nonces.current().encode())]
            await send(message)

        await self.app(scope, receive, send_with_nonce)
