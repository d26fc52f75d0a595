"""Layer 2, ``require_auth``: token type against the route, subject binding, token gate.

Used as ``Security(require_auth, scopes=[...])`` on routers and routes. It is a plain
function, not an ``HTTPBearer`` subclass, and awaits the bearer step itself rather than
declaring it as a dependency of its own: the bearer step already runs once per request
(its result is cached on the request scope), and each level of dependencies FastAPI
resolves costs time on every request.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import SecurityScopes

from taskgate.runtime import Runtime
from taskgate.security.bearer import authenticate
from taskgate.security.bindings import SUBJECT_BINDINGS
from taskgate.security.request_auth import AUTH_SCOPE_KEY, AuthState, RequestAuth, refuse
from taskgate.services.token_standing import gate_refusal
from taskgate.tokens import Refusal, TaskToken, TokenType

DEFAULT_TOKEN_TYPES = frozenset({TokenType.EXECUTION})


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
        raise refuse(
            request,
            Refusal.TOKEN_TYPE_NOT_ALLOWED,
            token_type=token.token_type,
            allowed=", ".join(sorted(allowed)),
        )
    for scope in security_scopes.scopes:
        param = SUBJECT_BINDINGS.get(scope)
        if param is not None and not _names_subject(request.path_params.get(param), token):
            raise refuse(request, Refusal.SUBJECT_MISMATCH)
    if auth.state is not AuthState.AUTHORIZED and not getattr(route, "gate_in_write", False):
        # The token gate: a token is worth nothing once revoked or once its TI has ended,
        # and a workload token starts its TI once. (On a ti:gate-in-write route the
        # route's own write is the gate: see taskgate.security.routing.)
        refusal = await gate_refusal(
            Runtime.of(request).standing,
            token,
            state_machine_route=getattr(route, "lifecycle_route", False),
        )
        if refusal is not None:
            raise refuse(request, refusal)
    auth.state = AuthState.AUTHORIZED
    return token


CurrentToken = Annotated[TaskToken, Depends(authenticate)]
"""The request's token, for handlers behind ``require_auth`` (reuses the cached result)."""


async def _proven_key(request: Request, token: CurrentToken) -> str | None:
    auth: RequestAuth = request.scope[AUTH_SCOPE_KEY]
    return auth.proven_key


ProvenKey = Annotated[str | None, Depends(_proven_key)]
"""The thumbprint of the key the request's DPoP proof showed (``security.dpop``), or None
without a proof: what ``/run`` binds the execution token it issues to."""
