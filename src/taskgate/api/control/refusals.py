"""Control API: the requests the Execution API refused, by reason and by route, and the
latest ones (``services.refusal_log``; never a token).

Security policy: an operator key with role ``reader``. Teams: an operator with teams sees
only refusals of tokens of its teams' TIs (a refusal before any TI was named, only an
operator without teams).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Security

from taskgate.api.deps import DbSession
from taskgate.security.operator_auth import ControlRoute, CurrentOperator, require_operator
from taskgate.services import refusal_log

router = APIRouter(
    prefix="/refusals",
    tags=["Refusals"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)


@router.get("")
async def read_refusals(
    operator: CurrentOperator,
    session: DbSession,
    minutes: int = Query(60, ge=1, le=7 * 24 * 60, description="How far back"),
    ti_id: uuid.UUID | None = Query(None, description="Only refusals of this TI's tokens"),
    latest: int = Query(50, ge=0, le=1000, description="How many of the newest to list"),
) -> dict[str, Any]:
    """Refusals of the last ``minutes``: ``total``, ``by_reason``, ``by_route`` (method
    and route template), and the ``latest`` ones, newest first (time, route, status,
    reason, the TI its token named)."""
    return await refusal_log.summary(
        session, since=datetime.now(UTC) - timedelta(minutes=minutes), teams=operator.teams,
        ti_id=ti_id, latest=latest,
    )
