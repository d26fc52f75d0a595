"""Layer 2, ``require_auth``: token type against the route, and subject binding.

Used as ``Security(require_auth, scopes=[...])`` on routers and routes. It is a plain
function, not an ``HTTPBearer`` subclass. It awaits the bearer step itself rather than
declaring it as a dependency of its own: the bearer step already runs once per request
(its result is cached on the request scope), and each level of dependencies FastAPI
resolves costs time on every request (measured in-process: a heartbeat went from 442 to
390 µs without it).
"""

from __future__ import annotations

import uuid
from typing import Annotated, NoReturn

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import SecurityScopes

from taskgate.security.bearer import AUTH_SCOPE_KEY, RequestAuth, authenticate, record_denial
from taskgate.security.bindings import SUBJECT_BINDINGS
from taskgate.services.token_standing import REUSED, REVOKED, refusal
from taskgate.tokens import TaskToken, TokenType, WorkloadToken

DEFAULT_TOKEN_TYPES = frozenset({TokenType.EXECUTION})

SUBJECT_MISMATCH = "Token subject does not match task instance ID"
REUSED_DETAIL = {"reason": "token_reused", "message": REUSED}


def type_not_allowed(token_type: TokenType, allowed: frozenset[TokenType]) -> str:
    listed = ", ".join(sorted(allowed))
    return f"Token type '{token_type}' not allowed for this endpoint. Allowed types: {listed}"


def _names_subject(value: str | None, token: TaskToken) -> bool:
    """Whether a path parameter names the token's TI."""
    if value is None:
        return False
    if value == token.claims.get("sub"):
        return True  # spelt as the token spells it (the common case): no parsing needed
    try:
        return uuid.UUID(value) == token.sub
    except ValueError:
        return False


async def require_auth(security_scopes: SecurityScopes, request: Request) -> TaskToken:
    token = await authenticate(request)
    auth: RequestAuth = request.scope[AUTH_SCOPE_KEY]
    route = request.scope.get("route")
    # A route that is not a TaskRoute has no declared policy: fail closed to the default.
    allowed = getattr(route, "allowed_token_types", None) or DEFAULT_TOKEN_TYPES
    if token.token_type not in allowed:
        deny(request, auth, "token_type_not_allowed", type_not_allowed(token.token_type, allowed))
    for scope in security_scopes.scopes:
        param = SUBJECT_BINDINGS.get(scope)
        if param is not None and not _names_subject(request.path_params.get(param), token):
            deny(request, auth, "subject_mismatch", SUBJECT_MISMATCH)
    if not auth.admitted and not getattr(route, "gate_in_write", False):
        # The token gate: a token is worth nothing once revoked or once its TI has ended,
        # and a workload token starts its TI once. (A ti:gate-in-write route checks
        # revocation in its own write instead, and the state machine answers for an ended
        # TI there: see taskgate.security.routing.)
        lookup = request.app.state.runtime.standing
        if isinstance(token, WorkloadToken) and await lookup.workload_spent(token.jti):
            deny(request, auth, "workload_token_reused", REUSED_DETAIL, status.HTTP_409_CONFLICT)
        standing = await lookup.get(token.sub)
        reason = refusal(
            token.iat, standing, state_machine_route=getattr(route, "lifecycle_route", False)
        )
        if reason is not None:
            deny(request, auth, "revoked" if reason == REVOKED else "ti_ended", reason)
        auth.admitted = True
    auth.authorized = True
    return token


def deny(
    request: Request,
    auth: RequestAuth,
    reason: str,
    detail: str | dict[str, str],
    status_code: int = status.HTTP_403_FORBIDDEN,
) -> NoReturn:
    """Refuse the request: one audit event (never the token itself), then 403."""
    auth.denied = True
    record_denial(request, reason, sub=str(auth.token.sub), jti=auth.token.jti)
    raise HTTPException(status_code, detail)


def deny_revoked(request: Request) -> NoReturn:
    """Refuse as the token gate refuses a revoked token: for a ti:gate-in-write route
    whose write did not happen because the token was revoked."""
    deny(request, request.scope[AUTH_SCOPE_KEY], "revoked", REVOKED)


CurrentToken = Annotated[TaskToken, Depends(authenticate)]
"""The request's token, for handlers behind ``require_auth`` (reuses the cached result)."""
