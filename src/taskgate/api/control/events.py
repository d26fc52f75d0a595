"""Control API: the event feed (every TI state change, token revocation and operator
action), as Server-Sent Events or, with ``follow=false``, as a JSON list.

Security policy: an operator key with role ``reader``. Teams: an operator with teams gets
only the events of its teams' DAGs, variables and connections.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import structlog
from fastapi import APIRouter, Header, Query, Request, Security
from fastapi.responses import JSONResponse, StreamingResponse

from taskgate.api.deps import RuntimeDep
from taskgate.db.models import ID_LENGTH
from taskgate.runtime import Runtime
from taskgate.security.operator_auth import (
    ControlRoute,
    CurrentOperator,
    require_operator,
    still_admitted,
)
from taskgate.services import control, events, views
from taskgate.services.errors import InvalidRequest, NotFound

router = APIRouter(
    prefix="/events",
    tags=["Events"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)

log = structlog.get_logger("taskgate.events")

# Ids a BIGINT holds.
MAX_EVENT_ID = 2**63 - 1
# A comment line this often keeps proxies from closing a quiet stream.
KEEP_ALIVE_SECONDS = 15.0
# How often a stream's credential is read again (at the latest: a keep-alive or an event
# must come first).
RECHECK_SECONDS = 5.0
# What an EventSource waits before it reconnects (milliseconds).
RECONNECT_MS = 1000

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# On a follow=false answer: the ``after`` that continues it.
RESUME_AFTER_HEADER = "Taskgate-Resume-After"


def _resume_point(after: int | None, last_event_id: str | None) -> int | None:
    """``Last-Event-ID`` (what a reconnecting EventSource sends) wins over ``after``."""
    if last_event_id is None or not last_event_id.strip():
        return after
    digits = last_event_id.strip()
    value = int(digits) if digits.isascii() and digits.isdigit() else -1
    if not 0 <= value <= MAX_EVENT_ID:
        raise InvalidRequest(
            "invalid_last_event_id", f"Last-Event-ID must be an event id, not {last_event_id!r}"
        )
    return value


@router.get(
    "",
    responses={
        200: {
            "description": "``text/event-stream`` (``follow``), else a JSON list of events",
            "content": {"text/event-stream": {}},
        },
        400: {"description": "An unknown resume point"},
        410: {"description": "The resume point is older than the retention (events_expired)"},
    },
)
async def read_events(
    request: Request,
    operator: CurrentOperator,
    runtime: RuntimeDep,
    after: int | None = Query(None, ge=0, le=MAX_EVENT_ID, description="Resume after this id"),
    dag_id: str | None = Query(None, min_length=1, max_length=ID_LENGTH),
    follow: bool = Query(True, description="Stream (true) or answer the backlog (false)"),
    limit: int = Query(events.READ_LIMIT, ge=1, le=10_000, description="follow=false: at most"),
    from_now: bool = Query(
        False, description="Start after the newest event kept, not the oldest (no resume "
        "point given): only what happens from now on"),
    last_event_id: str | None = Header(None, max_length=32),
) -> Any:
    """Events after the resume point (none given: the oldest kept), oldest first: ``id``
    (rising across replicas), ``event`` (``ti.state``, ``ti.revoked``,
    ``operator.action``), ``data``. Streamed as they are committed unless
    ``follow=false``; that answer's ``Taskgate-Resume-After`` header is the ``after`` that
    continues it (with ``from_now=true&limit=1``: the newest event id, in one request)."""
    after = _resume_point(after, last_event_id)
    async with runtime.sessionmaker() as session:
        if after is None and from_now:
            after = await events.latest_id(session)
        if dag_id is not None:
            try:
                team = await control.dag_team(session, dag_id)
            except NotFound:
                pass  # a DAG since removed: its events remain, under the team they had
            else:
                operator.check_team(team, f"DAG {dag_id}")
        if not follow:
            found = await events.read(
                session, after=after, dag_id=dag_id, teams=operator.teams, limit=limit,
                settle=events.SETTLE,
            )
            resume = found[-1].id if found else (
                after if after is not None else await events.horizon(session)
            )
            return JSONResponse(
                [views.event(record) for record in found],
                headers={RESUME_AFTER_HEADER: str(resume)},
            )
        await events.check_resume_point(session, after)
    stream = _stream(runtime, after=after, dag_id=dag_id, teams=operator.teams,
                     admitted=lambda: still_admitted(request, operator))
    return StreamingResponse(stream, media_type="text/event-stream", headers=STREAM_HEADERS)


async def _stream(
    runtime: Runtime, *, after: int | None, dag_id: str | None, teams: frozenset[str],
    admitted: Callable[[], Awaitable[bool]],
) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MS}\n\n"
    checked = time.monotonic()
    try:
        async for record in runtime.events.follow(
            after=after, dag_id=dag_id, teams=teams, idle=KEEP_ALIVE_SECONDS
        ):
            # The credential is read again on a long stream, as on a new request: a
            # revoked key, an ended session or an expired token ends the stream.
            if time.monotonic() - checked >= RECHECK_SECONDS:
                if not await admitted():
                    log.info("event stream ended: its credential no longer admits it")
                    return
                checked = time.monotonic()
            if record is None:
                yield ": keep-alive\n\n"
            else:
                yield f"id: {record.id}\nevent: {record.kind}\ndata: {record.data_json}\n\n"
    except Exception as exc:  # noqa: BLE001 - a refusal or a database fault mid-stream
        # The stream ends; the follower reconnects with Last-Event-ID and is answered
        # with the reason (410 when it fell behind the retention meanwhile).
        log.warning("event stream ended", error=str(exc))
