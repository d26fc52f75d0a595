"""Browser sessions of operators: what the operator page (``/ui``) signs in with.

A browser cannot keep an operator key safely in page script, so the page trades the
credential for a session once (``start``): the control API has already checked the key
or OIDC token as on every control request; the browser gets a random secret as an
HttpOnly cookie, and the database keeps only its SHA-256, so neither a copy of the table
nor a log line holds a usable session. Each request of the session is then ``resolve``d
from the database, on whichever replica it reaches:

* a session made from an operator key follows that operator: its role and teams are read
  afresh on each request, and once the operator is revoked (or removed) the session is
  refused;
* a session made from an OIDC token keeps the name, role and teams the token carried, and
  ends no later than the token would have expired (taskgate cannot ask the identity
  provider again without the token);
* every session ends at ``expires_at`` (``TASKGATE_UI_SESSION_TTL`` after sign-in), or
  when it is ended (``end``, signing out): the row is deleted, so the cookie is refused
  from the next request on, on every replica.

Each session has a CSRF token of its own, handed to the page (not a cookie), which every
state-changing request made with the session's cookie must repeat
(``security.operator_auth``).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import Operator, OperatorSession, utcnow
from taskgate.services import events

SECRET_PREFIX = "tgs_"


@dataclass(frozen=True)
class SessionView:
    """A live session: who it acts as and what its page must send back."""

    name: str
    role: str
    teams: frozenset[str]
    csrf_token: str
    expires_at: datetime


@dataclass(frozen=True)
class StartedSession:
    secret: str  # the cookie's value, shown once
    view: SessionView


def _session_id(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


async def start(
    session: AsyncSession,
    *,
    name: str,
    role: str,
    teams: frozenset[str],
    operator: str | None,
    lifetime: float,
    not_after: datetime | None = None,
) -> StartedSession:
    """A new session acting as ``name`` (``operator``: the operator row it follows, None
    for an OIDC identity), ending ``lifetime`` seconds from now or at ``not_after``,
    whichever comes first. Committed, with an ``operator.action`` event."""
    now = utcnow()
    expires_at = now + timedelta(seconds=lifetime)
    if not_after is not None:
        expires_at = min(expires_at, not_after)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = OperatorSession(
        session_id=_session_id(secret), operator=operator, name=name, role=role,
        teams=sorted(teams), csrf_token=secrets.token_urlsafe(32), created_at=now,
        expires_at=expires_at,
    )
    session.add(row)
    await events.commit(session, name, [events.operator_action("session.start", name)])
    return StartedSession(secret, SessionView(name, role, teams, row.csrf_token, expires_at))


async def resolve(session: AsyncSession, secret: str) -> SessionView | None:
    """The live session whose cookie is ``secret``; None if there is none (never was,
    ended, expired, or its operator revoked)."""
    if not secret.startswith(SECRET_PREFIX):
        return None
    found = await session.execute(
        select(OperatorSession, Operator)
        .outerjoin(Operator, Operator.name == OperatorSession.operator)
        .where(OperatorSession.session_id == _session_id(secret))
    )
    row = found.first()
    if row is None:
        return None
    live, operator = row
    if live.expires_at <= utcnow():
        return None
    if live.operator is None:
        return SessionView(live.name, live.role, frozenset(live.teams), live.csrf_token,
                           live.expires_at)
    if operator is None or operator.revoked_at is not None:
        return None
    return SessionView(operator.name, operator.role, frozenset(operator.teams),
                       live.csrf_token, live.expires_at)


def csrf_matches(view: SessionView, sent: str | None) -> bool:
    """Whether ``sent`` (the request's CSRF header) is this session's token."""
    return sent is not None and hmac.compare_digest(
        sent.encode("utf-8", "surrogatepass"), view.csrf_token.encode()
    )


async def end(session: AsyncSession, secret: str) -> bool:
    """End the session whose cookie is ``secret``; whether there was one."""
    row = await session.get(OperatorSession, _session_id(secret))
    if row is None:
        return False
    await session.delete(row)
    await events.commit(session, row.name, [events.operator_action("session.end", row.name)])
    return True


async def purge(session: AsyncSession) -> int:
    """Delete the sessions past their ``expires_at``; how many."""
    deleted = await session.execute(
        delete(OperatorSession).where(OperatorSession.expires_at <= utcnow())
    )
    await session.commit()
    return int(deleted.rowcount or 0)
