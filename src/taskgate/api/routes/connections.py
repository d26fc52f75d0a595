"""Connection routes. Security policy: execution tokens only; no subject binding — the
access policy (``services.access``) decides per team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Security

from taskgate.api.deps import DbSession, Requester, RuntimeDep
from taskgate.api.params import path_identifier
from taskgate.api.responses import FORBIDDEN_BY_POLICY, NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import connections
from taskgate.wire.http import CONNECTIONS
from taskgate.wire.runtime_data import ConnectionResponse

router = APIRouter(
    prefix=CONNECTIONS,
    tags=["Connections"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth)],
    responses={**FORBIDDEN_BY_POLICY, **NOT_FOUND},
)


@router.get("/{connection_id}")
async def get_connection(
    connection_id: Annotated[str, path_identifier()],
    requester: Requester,
    session: DbSession,
    runtime: RuntimeDep,
) -> ConnectionResponse:
    connection = await connections.read(
        session, runtime.secrets, requester, connection_id, runtime.read_audit
    )
    return ConnectionResponse(conn_id=connection.conn_id, **vars(connection.fields))
