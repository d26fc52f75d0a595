"""Layer 1, bearer validation: ``Authorization: Bearer <jwt>`` -> a typed ``TaskToken``.

It runs once per request: the outcome is stored on the ASGI scope (``RequestAuth``, see
``request_auth``) and every later consumer (``require_auth`` under any scopes, the
re-issue middleware) reuses it. It knows nothing of routes, scopes or token types.
"""

from __future__ import annotations

from fastapi import Request

from taskgate.runtime import Runtime
from taskgate.security.request_auth import AUTH_SCOPE_KEY, RequestAuth, refuse
from taskgate.tokens import InvalidToken, Refusal, TaskToken


def _bearer_credentials(request: Request) -> str:
    values = [v for k, v in request.scope["headers"] if k == b"authorization"]
    if len(values) > 1:
        # RFC 6750 §3.1: more than one method (or copy) of credentials is a bad request.
        raise refuse(request, Refusal.MULTIPLE_AUTHORIZATION_HEADERS)
    if not values:
        raise refuse(request, Refusal.MISSING_TOKEN)
    scheme, _, credentials = values[0].decode("latin-1").strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        raise refuse(request, Refusal.MISSING_TOKEN)
    return credentials


async def authenticate(request: Request) -> TaskToken:
    """The validated token of this request (validated on first use, then cached)."""
    cached: RequestAuth | None = request.scope.get(AUTH_SCOPE_KEY)
    if cached is not None and cached.token is not None:
        return cached.token
    raw = _bearer_credentials(request)
    try:
        token = Runtime.of(request).validator.validate(raw)
    except InvalidToken as exc:
        raise refuse(request, exc.refusal, exc.detail, log={"detail": exc.reason}) from None
    if token.jkt is not None:
        # Bound to a key (cnf.jkt): worthless without a proof of that key, so never
        # accepted as a bearer token.
        raise refuse(request, Refusal.DPOP_PROOF_REQUIRED,
                     log={"sub": str(token.sub), "jti": token.jti, "jkt": token.jkt})
    request.scope[AUTH_SCOPE_KEY] = RequestAuth(token)
    return token
