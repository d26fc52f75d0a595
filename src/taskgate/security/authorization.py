"""Layer 2, ``require_auth``: token type against the route, and subject binding.

Used as ``Security(require_auth, scopes=[...])`` on routers and routes. It is a plain
function (not an ``HTTPBearer`` subclass) so FastAPI's dependency cache can share the
bearer step between several uses in one request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import SecurityScopes

from taskgate.security.bearer import AUTH_SCOPE_KEY, RequestAuth, authenticate
from taskgate.security.bindings import SUBJECT_BINDINGS
from taskgate.tokens import TaskToken, TokenType

DEFAULT_TOKEN_TYPES = frozenset({TokenType.EXECUTION})

SUBJECT_MISMATCH = "Token subject does not match task instance ID"


def type_not_allowed(token_type: TokenType, allowed: frozenset[TokenType]) -> str:
    listed = ", ".join(sorted(allowed))
    return f"Token type '{token_type}' not allowed for this endpoint. Allowed types: {listed}"


def _path_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value is not None else None
    except ValueError:
        return None


async def require_auth(
    security_scopes: SecurityScopes,
    request: Request,
    token: Annotated[TaskToken, Depends(authenticate)],
) -> TaskToken:
    auth: RequestAuth = request.scope[AUTH_SCOPE_KEY]
    route = request.scope.get("route")
    # A route that is not a TaskRoute has no declared policy: fail closed to the default.
    allowed = getattr(route, "allowed_token_types", None) or DEFAULT_TOKEN_TYPES
    if token.token_type not in allowed:
        auth.denied = True
        raise HTTPException(status.HTTP_403_FORBIDDEN, type_not_allowed(token.token_type, allowed))
    for scope in security_scopes.scopes:
        param = SUBJECT_BINDINGS.get(scope)
        if param is not None and _path_uuid(request.path_params.get(param)) != token.sub:
            auth.denied = True
            raise HTTPException(status.HTTP_403_FORBIDDEN, SUBJECT_MISMATCH)
    auth.authorized = True
    return token


CurrentToken = Annotated[TaskToken, Depends(authenticate)]
"""The request's token, for handlers behind ``require_auth`` (reuses the cached result)."""
