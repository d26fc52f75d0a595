"""Layer 3, ``TaskRoute``: each route's token policy, computed once at registration.

FastAPI's security scopes only accumulate, so a route could never *narrow* what its
router allows by adding scopes. Instead this route class reads every ``token:<type>``
scope of every ``require_auth`` on the route (router-level and route-level dependencies,
already merged when the route is built) and stores the allowed token types:

- no ``token:*`` scope -> ``{"execution"}``;
- ``token:bogus`` -> ``ValueError`` at import time;
- a subject binding (``ti:self``) whose path parameter is missing -> ``ValueError``;
- ``ti:lifecycle`` marks the routes where an ended TI's token meets the state machine
  rather than the token gate;
- ``ti:gate-in-write`` marks a route whose own write is its token gate: ``require_auth``
  reads nothing before the handler; the route's write is conditional on the token's
  ``iat`` being at or above the TI's ``tokens_not_before``, and when that is why it did
  not write, its service raises ``TokenRefused(Refusal.REVOKED)``, answered as the token
  gate answers. Only for a lifecycle route bound to its TI (``ti:self``) that takes
  execution tokens alone: anything else -> ``ValueError``. Why, and what it answers:
  docs/security.md, "The heartbeat's gate is its write".

``require_auth`` reads ``allowed_token_types`` from the matched route at request time.
The class also declares the bearer scheme and the 401/403 answers in OpenAPI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from taskgate.security.authorization import DEFAULT_TOKEN_TYPES, require_auth
from taskgate.security.bindings import SUBJECT_BINDINGS
from taskgate.tokens import TokenType

TOKEN_SCOPE_PREFIX = "token:"
# On a route with this scope, an ended TI's token is not refused by the token gate: the
# TI's state machine answers instead (409, or 2xx for an identical final-state repeat).
LIFECYCLE_SCOPE = "ti:lifecycle"
# On a route with this scope, require_auth leaves the token gate to the route's write,
# which checks revocation in the same statement (see the module docstring).
GATE_IN_WRITE_SCOPE = "ti:gate-in-write"
SECURITY_SCHEME_NAME = "TaskToken"


def declared_scopes(dependant: Dependant) -> list[str]:
    """The security scopes a dependency was declared with (its own and its parents')."""
    # FastAPI >= 0.12x keeps own/parent scopes; older releases one accumulated list.
    if hasattr(dependant, "own_oauth_scopes"):
        return [*(dependant.parent_oauth_scopes or []), *(dependant.own_oauth_scopes or [])]
    return list(getattr(dependant, "security_scopes", None) or [])


def _require_auth_uses(dependant: Dependant) -> Iterator[list[str]]:
    for sub in dependant.dependencies:
        if sub.call is require_auth:
            yield declared_scopes(sub)
        yield from _require_auth_uses(sub)


def token_types_from_scopes(scopes: list[str]) -> frozenset[TokenType]:
    types = set()
    for scope in scopes:
        if scope.startswith(TOKEN_SCOPE_PREFIX):
            name = scope[len(TOKEN_SCOPE_PREFIX) :]
            try:
                types.add(TokenType(name))
            except ValueError:
                raise ValueError(f"unknown token type in scope {scope!r}") from None
    return frozenset(types) or DEFAULT_TOKEN_TYPES


class TaskRoute(APIRoute):
    """An ``APIRoute`` that knows its token policy (see the module docstring)."""

    allowed_token_types: frozenset[TokenType] | None  # None: unauthenticated route
    subject_binding: str | None
    lifecycle_route: bool
    gate_in_write: bool

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        uses = list(_require_auth_uses(self.dependant))
        self.lifecycle_route = self.gate_in_write = False
        if not uses:
            self.allowed_token_types = None
            self.subject_binding = None
            return
        scopes = [scope for use in uses for scope in use]
        self.allowed_token_types = token_types_from_scopes(scopes)
        self.lifecycle_route = LIFECYCLE_SCOPE in scopes
        bindings = sorted({scope for scope in scopes if scope in SUBJECT_BINDINGS})
        self.gate_in_write = GATE_IN_WRITE_SCOPE in scopes
        if self.gate_in_write and not (
            self.lifecycle_route
            and "ti:self" in bindings
            and self.allowed_token_types == {TokenType.EXECUTION}
        ):
            raise ValueError(
                f"{self.path}: {GATE_IN_WRITE_SCOPE!r} needs 'ti:self', {LIFECYCLE_SCOPE!r} "
                "and execution tokens only"
            )
        for binding in bindings:
            if SUBJECT_BINDINGS[binding] not in self.param_convertors:
                raise ValueError(
                    f"{self.path}: scope {binding!r} needs path parameter "
                    f"{{{SUBJECT_BINDINGS[binding]}}}"
                )
        self.subject_binding = ",".join(bindings) or None
        self.openapi_extra = {
            **(self.openapi_extra or {}),
            "security": [{SECURITY_SCHEME_NAME: []}],
        }
        self.responses = {
            401: {"description": "Missing auth token"},
            403: {"description": "Invalid or refused token"},
            **self.responses,
        }
