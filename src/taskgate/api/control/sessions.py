"""Control API: operator page sessions. The page trades an operator key (or an OIDC
token) for a session held as a cookie, reads the session's CSRF token, and ends it.

Security policy: any operator (role ``reader``, its own teams). Starting a session needs
the credential itself in ``Authorization``, never a session (so a session cannot outlive
itself by renewing); reading and ending one need the session's cookie, and ending it,
as every change made with the cookie, its CSRF token (``security.operator_auth``).

The cookie is ``HttpOnly`` (page script never sees it), ``SameSite=Strict`` (no other
site's page makes the browser send it), ``Path=/`` (the page and the control API), and
``Secure`` when the page is served over HTTPS (directly, or behind a proxy named by
``TASKGATE_PUBLIC_URL``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response, Security

from taskgate.api.deps import RuntimeDep
from taskgate.security.dpop import request_url
from taskgate.security.operator_auth import (
    SESSION_COOKIE,
    SESSION_SCOPE_KEY,
    ControlRoute,
    CurrentOperator,
    require_operator,
)
from taskgate.services import operator_sessions
from taskgate.services.errors import InvalidRequest, NotFound
from taskgate.services.operator_sessions import SessionView

router = APIRouter(
    prefix="/sessions",
    tags=["Operator page sessions"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)


def _body(view: SessionView) -> dict[str, Any]:
    return {
        "name": view.name,
        "role": view.role,
        "teams": sorted(view.teams),
        "csrf_token": view.csrf_token,
        "expires_at": view.expires_at.isoformat(),
    }


@router.post("", status_code=201)
async def start_session(
    request: Request, response: Response, operator: CurrentOperator, runtime: RuntimeDep
) -> dict[str, Any]:
    """Sign in: a session acting as the operator of this request's credential, set as
    the ``taskgate_session`` cookie; the answer holds its CSRF token."""
    if operator.via == "session":
        raise InvalidRequest("credential_required",
                             "a session starts from an operator key or an OIDC token, "
                             "not from another session")
    settings = runtime.settings
    not_after = None
    if operator.expires_at is not None:
        not_after = datetime.fromtimestamp(operator.expires_at, UTC)
    async with runtime.sessionmaker() as session:
        started = await operator_sessions.start(
            session, name=operator.name, role=operator.role.value, teams=operator.teams,
            operator=operator.name if operator.via == "key" else None,
            lifetime=settings.ui_session_ttl, not_after=not_after,
        )
    lifetime = (started.view.expires_at - datetime.now(UTC)).total_seconds()
    response.set_cookie(
        SESSION_COOKIE, started.secret, max_age=max(1, int(lifetime)), path="/",
        httponly=True, samesite="strict",
        secure=request_url(request, settings.public_url).lower().startswith("https:"),
    )
    return _body(started.view)


def _current(request: Request) -> SessionView:
    view: SessionView | None = request.scope.get(SESSION_SCOPE_KEY)
    if view is None:
        raise NotFound("no_session", "this request carries no operator page session")
    return view


@router.get("/current")
async def read_session(request: Request) -> dict[str, Any]:
    """The session of this request's cookie: who it acts as, its CSRF token, its end."""
    return _body(_current(request))


@router.delete("/current", status_code=204)
async def end_session(request: Request, runtime: RuntimeDep) -> Response:
    """Sign out: the session ends now, on every replica; the cookie is cleared."""
    _current(request)
    async with runtime.sessionmaker() as session:
        await operator_sessions.end(session, request.cookies[SESSION_COOKIE])
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
