"""Layer 1, bearer validation: ``Authorization: Bearer <jwt>`` -> a typed ``TaskToken``.

It runs once per request: the outcome is stored on the ASGI scope under ``AUTH_SCOPE_KEY``
and every later consumer (``require_auth`` under any scopes, the re-issue middleware)
reuses it. It knows nothing of routes, scopes or token types.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog
from fastapi import HTTPException, Request, status

from taskgate.tokens import InvalidToken, InvalidTokenClaims, InvalidTokenScope, TaskToken

AUTH_SCOPE_KEY = "taskgate.auth"
DENIAL_SCOPE_KEY = "taskgate.denial"  # why a request was refused, for metrics

MISSING_TOKEN = "Missing auth token"

audit = structlog.get_logger("taskgate.audit")

_DENIAL_REASON = {InvalidTokenClaims: "invalid_claims", InvalidTokenScope: "invalid_scope"}


@dataclass(slots=True)
class RequestAuth:
    """What the security layers learned about one request."""

    token: TaskToken
    authorized: bool = False  # set by require_auth once its checks passed ...
    denied: bool = False  # ... unless any require_auth of this request refused it
    admitted: bool = False  # the token gate (revocation, ended TI) passed

    @property
    def may_refresh(self) -> bool:
        return self.authorized and not self.denied


def _bearer_credentials(request: Request) -> str:
    values = [v for k, v in request.scope["headers"] if k == b"authorization"]
    if len(values) > 1:
        # RFC 6750 §3.1: more than one method (or copy) of credentials is a bad request.
        record_denial(request, "multiple_authorization_headers")
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "Multiple Authorization headers")
    if not values:
        raise _missing(request)
    scheme, _, credentials = values[0].decode("latin-1").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        raise _missing(request)
    return credentials


def record_denial(request: Request, reason: str, **fields: object) -> None:
    """The one audit event of a refused request (never the token itself), and its reason
    on the scope for the metrics."""
    request.scope.setdefault(DENIAL_SCOPE_KEY, reason)
    audit.warning(
        "auth.denied", reason=reason, method=request.method, path=request.url.path, **fields
    )



def _missing(request: Request) -> HTTPException:
    record_denial(request, "missing_token")
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, MISSING_TOKEN, headers={"WWW-Authenticate": "Bearer"}
    )


async def authenticate(request: Request) -> TaskToken:
    """The validated token of this request (validated on first use, then cached)."""
    cached: RequestAuth | None = request.scope.get(AUTH_SCOPE_KEY)
    if cached is not None:
        return cached.token
    raw = _bearer_credentials(request)
    try:
        token = request.app.state.runtime.validator.validate(raw)
    except InvalidToken as exc:
        record_denial(request, _DENIAL_REASON.get(type(exc), "invalid_token"), detail=exc.reason)
        raise HTTPException(status.HTTP_403_FORBIDDEN, exc.detail) from None
    request.scope[AUTH_SCOPE_KEY] = RequestAuth(token)
    return token
