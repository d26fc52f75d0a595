"""The control API's security: operator keys, roles and teams.

The control API (``/control/v1``) and the Execution API never accept each other's
credentials: a task token is not an operator key (``tgk_...``), and an operator key is
not a JWT. For one control request:

1. ``require_operator``, attached with ``Security(require_operator, scopes=["role:<r>"])``
   to each control router (and to a route that needs more than its router), reads
   ``Authorization: Bearer <key>``. None -> 401 ``missing_key`` with ``WWW-Authenticate``.
   The key is looked up by its id and its secret compared in constant time
   (``services.operators``); unknown or revoked -> 401 ``invalid_key``. The row is read on
   every request, so a revocation holds from the next request on, on every replica.
2. The role the matched route needs (``ControlRoute.required_role``: the highest
   ``role:`` scope on it) against the operator's: short -> 403 ``role_required``, naming
   both.
3. Teams: an operator with teams acts only on DAGs of those teams. Handlers ask
   ``OperatorPrincipal.check_team`` for the DAG they touch (403 ``team_required``, naming
   the team) and filter what they list with ``OperatorPrincipal.sees``.

``ControlRoute`` is the route class of every control router: a route without
``require_operator`` fails at import time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes

from taskgate.runtime import Runtime
from taskgate.security.routing import declared_scopes
from taskgate.services import operators
from taskgate.services.errors import AccessDenied
from taskgate.services.operators import Role

ROLE_SCOPE_PREFIX = "role:"
OPERATOR_SCOPE_KEY = "taskgate.operator"
SCHEME_NAME = "OperatorKey"
REALM = 'Bearer realm="taskgate-control"'


@dataclass(frozen=True)
class OperatorPrincipal:
    name: str
    role: Role
    teams: frozenset[str]  # empty: every team

    def sees(self, team: str | None) -> bool:
        """Whether this operator may see and act on what belongs to ``team``."""
        return not self.teams or team in self.teams

    def check_team(self, team: str | None, what: str) -> None:
        if not self.sees(team):
            raise AccessDenied(
                "team_required",
                f"{what} belongs to team {team or '(none)'}; operator {self.name} acts for "
                f"{', '.join(sorted(self.teams))}",
            )


def _refused(status: int, reason: str, message: str, challenge: str) -> HTTPException:
    return HTTPException(
        status, {"reason": reason, "message": message}, headers={"WWW-Authenticate": challenge}
    )


async def require_operator(security_scopes: SecurityScopes, request: Request) -> OperatorPrincipal:
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise _refused(401, "missing_key", "An operator key is required", REALM)
    async with Runtime.of(request).sessionmaker() as session:
        operator = await operators.authenticate(session, key.strip())
    if operator is None:
        raise _refused(401, "invalid_key", "Unknown or revoked operator key",
                       f'{REALM}, error="invalid_token"')
    needed = getattr(request.scope.get("route"), "required_role", None) or Role.ADMIN
    role = Role(operator.role)
    if not role.allows(needed):
        raise HTTPException(403, {
            "reason": "role_required",
            "message": f"this needs role {needed}; operator {operator.name} has {role}",
        })
    principal = OperatorPrincipal(operator.name, role, frozenset(operator.teams))
    request.scope[OPERATOR_SCOPE_KEY] = principal
    return principal


def current_operator(request: Request) -> OperatorPrincipal:
    """The operator ``require_operator`` admitted (the router's check runs first)."""
    return request.scope[OPERATOR_SCOPE_KEY]  # type: ignore[no-any-return]


CurrentOperator = Annotated[OperatorPrincipal, Depends(current_operator)]


def _operator_scopes(dependant: Dependant) -> Iterator[list[str]]:
    for sub in dependant.dependencies:
        if sub.call is require_operator:
            yield declared_scopes(sub)
        yield from _operator_scopes(sub)


class ControlRoute(APIRoute):
    """An ``APIRoute`` of the control API: knows the role it needs (see the module
    docstring); refuses, at import, a route that checks no operator."""

    required_role: Role

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        scopes = [scope for use in _operator_scopes(self.dependant) for scope in use]
        roles = [Role(s[len(ROLE_SCOPE_PREFIX):]) for s in scopes if s.startswith(ROLE_SCOPE_PREFIX)]
        if not roles:
            raise ValueError(f"{self.path}: a control route needs require_operator with a role: scope")
        self.required_role = max(roles, key=list(Role).index)
        self.openapi_extra = {**(self.openapi_extra or {}), "security": [{SCHEME_NAME: []}]}
        self.responses = {
            401: {"description": "Missing, unknown or revoked operator key"},
            403: {"description": "The operator's role or teams do not allow it"},
            **self.responses,
        }
