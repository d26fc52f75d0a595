"""Control API: the read audit (as ``taskgate audit reads``).

Security policy: an operator key with role ``reader`` (records name keys, never values);
an operator with teams sees the reads of its teams' DAGs only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Security

from taskgate.api.deps import DbSession
from taskgate.security.operator_auth import ControlRoute, CurrentOperator, require_operator
from taskgate.services import read_audit, views

router = APIRouter(
    prefix="/audit",
    tags=["Audit"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)


@router.get("/reads")
async def list_reads(
    operator: CurrentOperator,
    session: DbSession,
    ti_id: uuid.UUID | None = None,
    dag_id: str | None = None,
    key: str | None = None,
    since: datetime | None = Query(None, description="ISO 8601; only reads at or after"),
    limit: int = Query(read_audit.READ_LIMIT, ge=1, le=10_000),
) -> list[dict[str, Any]]:
    """Every read of a variable or connection by a task, newest first: TI, DAG, task, map
    index, try, key, outcome (allowed, refused, not_found) and the refusing rule,
    hostname, time. Never a value."""
    found = await read_audit.reads(
        session, ti_id=ti_id, dag_id=dag_id, key=key, since=since, teams=operator.teams,
        limit=limit,
    )
    return [views.audit_read(row) for row in found]
