"""The control API's security: operator keys or OIDC tokens, roles and teams.

The control API (``/control/v1``) and the Execution API never accept each other's
credentials: a task token is not an operator key (``tgk_...``) nor an OIDC token, and an
operator key is not a JWT. For one control request:

1. ``require_operator``, attached with ``Security(require_operator, scopes=["role:<r>"])``
   to each control router (and to a route that needs more than its router), reads
   ``Authorization: Bearer <credential>``. Without that header, the operator page's
   session cookie stands for the credential (``services.operator_sessions``): an ended,
   expired or unknown session -> 401 ``session_ended``; a request that changes something
   (not GET, HEAD or OPTIONS) without the session's CSRF token in ``X-CSRF-Token`` -> 403
   ``csrf_token_required``; otherwise the session's operator, as of this request. Neither
   -> 401 ``missing_key`` with ``WWW-Authenticate``.
2. Who it is. A credential starting ``tgk_`` is an operator key: looked up by its id and
   its secret compared in constant time (``services.operators``); unknown or revoked ->
   401 ``invalid_key``. The row is read on every request, so a revocation holds from the
   next request on, on every replica. Any other credential, when
   ``TASKGATE_CONTROL_OIDC_ISSUER`` is set, is an access token of that identity provider
   (``security.oidc``): signature by a key of its JWKS, ``iss``, ``aud``, ``exp`` and
   ``nbf``; refused -> 401 with a reason saying which (``oidc_expired``,
   ``oidc_wrong_audience``, ...), its JWKS unreachable -> 503 ``oidc_unavailable``; the
   name, role and teams come from its claims (no usable role -> 403 ``role_required``).
   Without OIDC configured such a credential is 401 ``invalid_key``, as any unknown key.
   Either way the result is one ``OperatorPrincipal``: everything below treats keys and
   tokens alike.
3. The role the matched route needs (``ControlRoute.required_role``: the highest
   ``role:`` scope on it) against the operator's: short -> 403 ``role_required``, naming
   both.
4. Teams: an operator with teams acts only on DAGs of those teams. Handlers ask
   ``OperatorPrincipal.check_team`` for the DAG they touch (403 ``team_required``, naming
   the team) and filter what they list with ``OperatorPrincipal.sees``. A router that acts
   across teams declares the scope ``teams:all`` (``ControlRoute.team_scope`` "all"):
   an operator with teams is refused there, 403 ``team_required``.

``ControlRoute`` is the route class of every control router: a route without
``require_operator`` fails at import time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import SecurityScopes

from taskgate.runtime import Runtime
from taskgate.security.oidc import OidcRefusal, OidcVerifier
from taskgate.security.routing import declared_scopes
from taskgate.services import operator_sessions, operators
from taskgate.services.errors import AccessDenied
from taskgate.services.operators import KEY_PREFIX, Role

ROLE_SCOPE_PREFIX = "role:"
# On a router whose routes act across teams (operators): only an operator without teams.
ALL_TEAMS_SCOPE = "teams:all"
OPERATOR_SCOPE_KEY = "taskgate.operator"
SESSION_SCOPE_KEY = "taskgate.operator_session"
# The operator page's session (services.operator_sessions) and the header repeating its
# CSRF token; requests with these methods change nothing, so they need no CSRF token.
SESSION_COOKIE = "taskgate_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SCHEME_NAME = "OperatorKey"
REALM = 'Bearer realm="taskgate-control"'


@dataclass(frozen=True)
class OperatorPrincipal:
    name: str
    role: Role
    teams: frozenset[str]  # empty: every team
    # What it was proved with: "key" (the operator row ``name``), "oidc" (a token ending
    # at ``expires_at``) or "session" (the operator page's cookie).
    via: str = "key"
    expires_at: float | None = None

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
    # A route that needs more than its router runs this twice: the second time, the
    # request's credential is already checked.
    principal: OperatorPrincipal | None = request.scope.get(OPERATOR_SCOPE_KEY)
    if principal is None:
        principal = await _identify(request)
    needed = getattr(request.scope.get("route"), "required_role", None) or Role.ADMIN
    if not principal.role.allows(needed):
        raise HTTPException(403, {
            "reason": "role_required",
            "message": f"this needs role {needed}; operator {principal.name} has {principal.role}",
        })
    if getattr(request.scope.get("route"), "team_scope", "all") == "all" and principal.teams:
        raise HTTPException(403, {
            "reason": "team_required",
            "message": f"this needs an operator of every team; {principal.name} acts for "
            f"{', '.join(sorted(principal.teams))}",
        })
    request.scope[OPERATOR_SCOPE_KEY] = principal
    return principal


async def still_admitted(request: Request, principal: OperatorPrincipal) -> bool:
    """Whether the credential of ``request`` (a long-lived one: an event stream) still
    admits it as ``principal``: read again, as on a new request, with the same name, role
    and teams. False once the key is revoked, the session ended or the token expired, or
    the operator's role or teams changed (a new request would then be judged anew)."""
    try:
        again = await _identify(request)
    except HTTPException:
        return False
    return (again.name, again.role, again.teams) == (principal.name, principal.role,
                                                     principal.teams)


async def _identify(request: Request) -> OperatorPrincipal:
    """Who sends this request: its ``Authorization`` credential or, without one, its
    operator page session (and, for a request that changes something, the session's
    CSRF token)."""
    runtime = Runtime.of(request)
    verifier: OidcVerifier | None = request.app.state.oidc_verifier
    header = request.headers.get("authorization")
    if header is None and SESSION_COOKIE in request.cookies:
        return await _session_principal(runtime, request)
    scheme, _, credential = (header or "").partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential:
        wanted = "An operator key or an OIDC access token" if verifier else "An operator key"
        raise _refused(401, "missing_key", f"{wanted} is required", REALM)
    return await _authenticate(runtime, verifier, credential)


async def _session_principal(runtime: Runtime, request: Request) -> OperatorPrincipal:
    async with runtime.sessionmaker() as session:
        view = await operator_sessions.resolve(session, request.cookies[SESSION_COOKIE])
    if view is None:
        raise _refused(401, "session_ended",
                       "The operator page session has ended or expired: sign in again",
                       f'{REALM}, error="invalid_token"')
    if request.method not in SAFE_METHODS and not operator_sessions.csrf_matches(
        view, request.headers.get(CSRF_HEADER)
    ):
        raise HTTPException(403, {
            "reason": "csrf_token_required",
            "message": f"a change made with the session cookie must carry the session's "
            f"CSRF token in {CSRF_HEADER}",
        })
    request.scope[SESSION_SCOPE_KEY] = view
    return OperatorPrincipal(view.name, Role(view.role), view.teams, via="session")


async def _authenticate(
    runtime: Runtime, verifier: OidcVerifier | None, credential: str
) -> OperatorPrincipal:
    if verifier is not None and not credential.startswith(KEY_PREFIX):
        return await _oidc_principal(verifier, credential)
    async with runtime.sessionmaker() as session:
        operator = await operators.authenticate(session, credential)
    if operator is None:
        raise _refused(401, "invalid_key", "Unknown or revoked operator key",
                       f'{REALM}, error="invalid_token"')
    return OperatorPrincipal(operator.name, Role(operator.role), frozenset(operator.teams))


async def _oidc_principal(verifier: OidcVerifier, token: str) -> OperatorPrincipal:
    try:
        identity = await verifier.verify(token)
    except OidcRefusal as refusal:
        if refusal.status == 401:
            raise _refused(401, refusal.reason, refusal.message,
                           f'{REALM}, error="invalid_token"') from None
        detail = {"reason": refusal.reason, "message": refusal.message}
        retry = None
        if refusal.retry_after is not None:
            retry = {"Retry-After": str(math.ceil(refusal.retry_after))}
        raise HTTPException(refusal.status, detail, headers=retry) from None
    return OperatorPrincipal(identity.name, identity.role, identity.teams, via="oidc",
                             expires_at=identity.expires_at)


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
    team_scope: str  # "own": the operator's teams; "all": an operator without teams only

    def __init__(self, path: str, endpoint: Any, **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        scopes = [scope for use in _operator_scopes(self.dependant) for scope in use]
        roles = [Role(s[len(ROLE_SCOPE_PREFIX):]) for s in scopes if s.startswith(ROLE_SCOPE_PREFIX)]
        if not roles:
            raise ValueError(f"{self.path}: a control route needs require_operator with a role: scope")
        self.required_role = max(roles, key=list(Role).index)
        self.team_scope = "all" if ALL_TEAMS_SCOPE in scopes else "own"
        self.openapi_extra = {**(self.openapi_extra or {}), "security": [{SCHEME_NAME: []}]}
        self.responses = {
            401: {"description": "Missing, unknown or revoked operator key, or a refused "
                  "OIDC token"},
            403: {"description": "The operator's role or teams do not allow it"},
            **self.responses,
        }
