"""What the security layers learned about one request, and how they refuse it.

The bearer step stores a ``RequestAuth`` on the ASGI scope (``AUTH_SCOPE_KEY``) the
first time it runs; ``require_auth`` moves it to ``AUTHORIZED``; any refusal
(``refuse``) moves it to ``REFUSED`` for good. The re-issue middleware refreshes tokens
only of ``AUTHORIZED`` requests, and the metrics count ``refusal.code``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import structlog
from fastapi import HTTPException, status
from starlette.requests import HTTPConnection
from starlette.types import Scope

from taskgate.tokens import Refusal, TaskToken
from taskgate.tokens.dpop import DPOP_ALGORITHMS
from taskgate.tokens.refusals import PROOF_REFUSALS
from taskgate.wire.http import REASON_HEADER

AUTH_SCOPE_KEY = "taskgate.auth"
DPOP_ALGS = " ".join(DPOP_ALGORITHMS)  # RFC 9449 §7.1: the proof algorithms accepted

audit = structlog.get_logger("taskgate.audit")

# Each refusal's answer; the rest are 403.
_STATUS = {
    **dict.fromkeys(PROOF_REFUSALS, status.HTTP_401_UNAUTHORIZED),
    Refusal.MISSING_TOKEN: status.HTTP_401_UNAUTHORIZED,
    Refusal.MULTIPLE_AUTHORIZATION_HEADERS: status.HTTP_400_BAD_REQUEST,
    Refusal.WORKLOAD_TOKEN_REUSED: status.HTTP_409_CONFLICT,
    Refusal.DPOP_PROOF_REQUIRED: status.HTTP_401_UNAUTHORIZED,
    Refusal.TOKEN_NOT_BOUND: status.HTTP_401_UNAUTHORIZED,
    Refusal.DAG_REQUIRES_DPOP: status.HTTP_401_UNAUTHORIZED,
}
_HEADERS = {
    **dict.fromkeys(PROOF_REFUSALS, {
        "WWW-Authenticate": f'DPoP error="invalid_dpop_proof", algs="{DPOP_ALGS}"'
    }),
    Refusal.USE_DPOP_NONCE: {
        "WWW-Authenticate": f'DPoP error="use_dpop_nonce", algs="{DPOP_ALGS}"'
    },
    Refusal.MISSING_TOKEN: {"WWW-Authenticate": "Bearer"},
    Refusal.TOKEN_NOT_BOUND: {"WWW-Authenticate": "Bearer"},
    Refusal.DAG_REQUIRES_DPOP: {"WWW-Authenticate": f'DPoP algs="{DPOP_ALGS}"'},
    # RFC 9449 §7.1: the scheme the token needs, and what was wrong.
    Refusal.DPOP_PROOF_REQUIRED: {
        "WWW-Authenticate": f'DPoP error="invalid_token", algs="{DPOP_ALGS}"'
    },
}


class AuthState(Enum):
    VALIDATED = "validated"  # the bearer token is valid; nothing decided yet
    AUTHORIZED = "authorized"  # require_auth passed (every use of it on the route)
    REFUSED = "refused"  # refused, at any layer: final


@dataclass(slots=True)
class RequestAuth:
    token: TaskToken | None  # None: refused before a token was validated
    proven_key: str | None = None  # thumbprint of the key a DPoP proof of this request showed
    state: AuthState = AuthState.VALIDATED
    refusal: Refusal | None = None


def auth_of(scope: Scope) -> RequestAuth | None:
    return scope.get(AUTH_SCOPE_KEY)


def refuse(
    connection: HTTPConnection,
    refusal: Refusal,
    message: str | None = None,
    *,
    log: dict[str, object] | None = None,
    headers: dict[str, str] | None = None,
    **fields: str,
) -> HTTPException:
    """Mark the request refused and log the one audit event of it (never the token
    itself); returns the HTTP answer to raise. ``message`` replaces the refusal's own
    (a validator's wording), ``fields`` fill its placeholders, ``log`` adds to the event,
    ``headers`` to the answer's."""
    scope = connection.scope
    auth = auth_of(scope)
    if auth is None:
        auth = scope[AUTH_SCOPE_KEY] = RequestAuth(None)
    auth.state = AuthState.REFUSED
    auth.refusal = auth.refusal or refusal
    token = {"sub": str(auth.token.sub), "jti": auth.token.jti} if auth.token else {}
    audit.warning(
        "auth.denied",
        reason=refusal.code,
        method=scope["method"],
        path=connection.url.path,
        **token,
        **(log or {}),
    )
    return HTTPException(
        _STATUS.get(refusal, status.HTTP_403_FORBIDDEN),
        refusal.detail(message, **fields),
        headers={REASON_HEADER: refusal.code, **_HEADERS.get(refusal, {}), **(headers or {})},
    )
