"""Variable routes. Security policy: execution tokens only; no subject binding (a variable
is not a TI) — the access policy (``services.access``) decides per team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Security, status

from taskgate.api.deps import DbSession, Requester, RuntimeDep
from taskgate.api.params import path_identifier
from taskgate.api.responses import FORBIDDEN_BY_POLICY, NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import variables
from taskgate.wire.http import VARIABLES
from taskgate.wire.runtime_data import (
    MessageResponse,
    VariableKeysResponse,
    VariablePostBody,
    VariableResponse,
)

router = APIRouter(
    prefix=VARIABLES,
    tags=["Variables"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth)],
    responses=FORBIDDEN_BY_POLICY,
)

VariableKey = Annotated[str, path_identifier()]


@router.get("/keys")
async def list_variable_keys(
    requester: Requester,
    session: DbSession,
    prefix: Annotated[str | None, Query(max_length=250)] = None,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
) -> VariableKeysResponse:
    """The keys this TI may read (global and its team's), sorted."""
    keys, total = await variables.visible_keys(
        session, requester, prefix=prefix, limit=limit, offset=offset
    )
    return VariableKeysResponse(keys=keys, total_entries=total)


@router.get("/{variable_key:path}", responses=NOT_FOUND)
async def get_variable(
    variable_key: VariableKey, requester: Requester, session: DbSession, runtime: RuntimeDep
) -> VariableResponse:
    variable = await variables.read(
        session, runtime.secrets, requester, variable_key, runtime.read_audit
    )
    return VariableResponse(key=variable.key, value=variable.value)


@router.put("/{variable_key:path}", status_code=status.HTTP_201_CREATED)
async def put_variable(
    variable_key: VariableKey,
    body: VariablePostBody,
    requester: Requester,
    session: DbSession,
    runtime: RuntimeDep,
) -> MessageResponse:
    await variables.write(
        session, runtime.secrets, requester, variable_key, body.val, body.description
    )
    return MessageResponse(message="Variable successfully set")


@router.delete("/{variable_key:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_variable(
    variable_key: VariableKey, requester: Requester, session: DbSession
) -> None:
    await variables.remove(session, requester, variable_key)
