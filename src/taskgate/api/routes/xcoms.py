"""XCom routes. Security policy: execution tokens only; no subject binding in the path —
the access policy (``services.access``) lets a TI write only its own XComs and read its
own DAG's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response, Security, status

from taskgate.api.datamodels.runtime_data import MessageResponse, XComResponse
from taskgate.api.deps import DbSession, Requester
from taskgate.api.responses import FORBIDDEN_BY_POLICY, NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import xcoms
from taskgate.services.errors import InvalidInput, InvalidRequest, NotFound

router = APIRouter(
    prefix="/xcoms",
    tags=["XComs"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth)],
    responses=FORBIDDEN_BY_POLICY,
)

Ident = Annotated[str, Path(min_length=1, max_length=250)]
Key = Annotated[str, Path(min_length=1, max_length=512)]
MapIndex = Annotated[int, Query(ge=-1, le=2**31 - 1)]
JsonBody = Annotated[object, Body()]


@router.get("/{dag_id}/{run_id}/{task_id}/{key:path}/item/{offset}", responses=NOT_FOUND)
async def get_sequence_item(
    dag_id: Ident,
    run_id: Ident,
    task_id: Ident,
    key: Key,
    offset: Annotated[int, Path(ge=-(2**31), le=2**31 - 1)],
    requester: Requester,
    session: DbSession,
) -> object:
    """One value of a mapped task's XCom; a negative offset counts from the end."""
    values = await xcoms.sequence(session, requester, dag_id, run_id, task_id, key)
    try:
        return values[offset]
    except IndexError:
        raise NotFound("not_found", f"XCom {key!r} has no item at offset {offset}") from None


@router.get("/{dag_id}/{run_id}/{task_id}/{key:path}/slice")
async def get_sequence_slice(
    dag_id: Ident,
    run_id: Ident,
    task_id: Ident,
    key: Key,
    requester: Requester,
    session: DbSession,
    start: int | None = None,
    stop: int | None = None,
    step: Annotated[int | None, Query()] = None,
) -> list[object]:
    """Python slice semantics over a mapped task's XCom values."""
    if step == 0:
        raise InvalidInput("invalid_step", "slice step cannot be zero")
    values = await xcoms.sequence(session, requester, dag_id, run_id, task_id, key)
    return values[start:stop:step]


@router.head("/{dag_id}/{run_id}/{task_id}/{key:path}", status_code=status.HTTP_200_OK)
async def count_xcoms(
    dag_id: Ident,
    run_id: Ident,
    task_id: Ident,
    key: Key,
    requester: Requester,
    session: DbSession,
    map_index: int | None = None,
) -> Response:
    """How many map indexes pushed this key, in ``Content-Range: map_indexes N``."""
    if map_index is not None:
        raise InvalidRequest("invalid_request", "Cannot specify map_index in a HEAD request")
    count = await xcoms.count(session, requester, dag_id, run_id, task_id, key)
    return Response(headers={"Content-Range": f"map_indexes {count}"})


@router.get("/{dag_id}/{run_id}/{task_id}/{key:path}", responses=NOT_FOUND)
async def get_xcom(
    dag_id: Ident,
    run_id: Ident,
    task_id: Ident,
    key: Key,
    requester: Requester,
    session: DbSession,
    map_index: MapIndex = -1,
) -> XComResponse:
    value = await xcoms.pull(
        session, requester, dag_id, run_id, task_id, key, map_index=map_index
    )
    return XComResponse(key=key, value=value)


@router.post("/{dag_id}/{run_id}/{task_id}/{key:path}", status_code=status.HTTP_201_CREATED)
async def set_xcom(
    dag_id: Ident,
    run_id: Ident,
    task_id: Ident,
    key: Key,
    value: JsonBody,
    requester: Requester,
    session: DbSession,
    map_index: MapIndex = -1,
) -> MessageResponse:
    await xcoms.push(
        session, requester, dag_id, run_id, task_id, key, value, map_index=map_index
    )
    return MessageResponse(message="XCom successfully set")


@router.delete("/{dag_id}/{run_id}/{task_id}/{key:path}")
async def delete_xcom(
    dag_id: Ident,
    run_id: Ident,
    task_id: Ident,
    key: Key,
    requester: Requester,
    session: DbSession,
    map_index: MapIndex = -1,
) -> MessageResponse:
    await xcoms.remove(session, requester, dag_id, run_id, task_id, key, map_index=map_index)
    return MessageResponse(message=f"XCom with key: {key} successfully deleted.")
