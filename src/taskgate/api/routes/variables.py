"""Variable routes. Security policy: execution tokens only; no subject binding (a variable
is not a TI) — the access policy (``services.access``) decides per team."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Security, status

from taskgate.api.datamodels.runtime_data import MessageResponse, VariablePostBody, VariableResponse
from taskgate.api.deps import DbSession, Requester
from taskgate.api.responses import FORBIDDEN_BY_POLICY, NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import variables

router = APIRouter(
    prefix="/variables",
    tags=["Variables"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth)],
    responses=FORBIDDEN_BY_POLICY,
)

VariableKey = Annotated[str, Path(min_length=1, max_length=250)]


@router.get("/{variable_key:path}", responses=NOT_FOUND)
async def get_variable(
    variable_key: VariableKey, requester: Requester, session: DbSession
) -> VariableResponse:
    variable = await variables.read(session, requester, variable_key)
    return VariableResponse(key=variable.key, value=variable.value)


@router.put("/{variable_key:path}", status_code=status.HTTP_201_CREATED)
async def put_variable(
    variable_key: VariableKey, body: VariablePostBody, requester: Requester, session: DbSession
) -> MessageResponse:
    await variables.write(session, requester, variable_key, body.val, body.description)
    return MessageResponse(message="Variable successfully set")


@router.delete("/{variable_key:path}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_variable(
    variable_key: VariableKey, requester: Requester, session: DbSession
) -> None:
    await variables.remove(session, requester, variable_key)
