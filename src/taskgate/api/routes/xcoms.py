"""XCom routes. Security policy: execution tokens only; no subject binding in the path —
the access policy (``services.access``) lets a TI write only its own XComs and read its
own DAG's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path, Query, Response, Security, status

from taskgate.api.deps import DbSession, Requester
from taskgate.api.params import path_identifier
from taskgate.api.responses import FORBIDDEN_BY_POLICY, NOT_FOUND
from taskgate.security import TaskRoute, require_auth
from taskgate.services import xcoms
from taskgate.services.errors import InvalidInput, InvalidRequest
from taskgate.wire.http import XCOM_COUNT_HEADER, XCOM_COUNT_UNIT, XCOMS
from taskgate.wire.runtime_data import (
    FiniteJson,
    MessageResponse,
    XComResponse,
)

router = APIRouter(
    prefix=XCOMS + "/{dag_id}/{run_id}/{task_id}/{key:path}",
    tags=["XComs"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth)],
    responses=FORBIDDEN_BY_POLICY,
)

Ident = Annotated[str, path_identifier()]


async def xcom_ref(
    dag_id: Ident,
    run_id: Ident,
    task_id: Ident,
    key: Annotated[str, path_identifier(512)],
) -> xcoms.XComRef:
    return xcoms.XComRef(dag_id, run_id, task_id, key)


Ref = Annotated[xcoms.XComRef, Depends(xcom_ref)]
MapIndex = Annotated[int, Query(ge=-1, le=2**31 - 1)]


@router.get("/item/{offset}", responses=NOT_FOUND)
async def get_sequence_item(
    ref: Ref,
    offset: Annotated[int, Path(ge=-(2**31), le=2**31 - 1)],
    requester: Requester,
    session: DbSession,
) -> object:
    """One value of a mapped task's XCom; a negative offset counts from the end."""
    return await xcoms.pull(session, requester, ref, offset=offset)


@router.get("/slice")
async def get_sequence_slice(
    ref: Ref,
    requester: Requester,
    session: DbSession,
    start: int | None = None,
    stop: int | None = None,
    step: int | None = None,
    include_prior_dates: bool = False,
) -> list[object]:
    """Python slice semantics over a mapped task's XCom values."""
    if step == 0:
        raise InvalidInput("invalid_step", "slice step cannot be zero")
    values = await xcoms.sequence(
        session, requester, ref, include_prior_dates=include_prior_dates
    )
    return values[start:stop:step]


@router.head("", status_code=status.HTTP_200_OK)
async def count_xcoms(
    ref: Ref, requester: Requester, session: DbSession, map_index: int | None = None
) -> Response:
    """How many map indexes pushed this key, in ``Content-Range: map_indexes N``."""
    if map_index is not None:
        raise InvalidRequest("invalid_request", "Cannot specify map_index in a HEAD request")
    count = await xcoms.count(session, requester, ref)
    return Response(headers={XCOM_COUNT_HEADER: f"{XCOM_COUNT_UNIT} {count}"})


@router.get("", responses=NOT_FOUND)
async def get_xcom(
    ref: Ref,
    requester: Requester,
    session: DbSession,
    map_index: MapIndex = -1,
    include_prior_dates: bool = False,
    offset: Annotated[int | None, Query(ge=-(2**31), le=2**31 - 1)] = None,
) -> XComResponse:
    """The value at ``map_index``; with ``offset``, the offset-th value across map indexes;
    with ``include_prior_dates``, the latest one from this or an earlier run."""
    value = await xcoms.pull(
        session, requester, ref, map_index=map_index, offset=offset,
        include_prior_dates=include_prior_dates,
    )
    return XComResponse(key=ref.key, value=value)


@router.post("", status_code=status.HTTP_201_CREATED)
async def set_xcom(
    ref: Ref,
    requester: Requester,
    session: DbSession,
    value: Annotated[FiniteJson, Body()] = None,  # no body: the SDK pushing None
    map_index: MapIndex = -1,
    mapped_length: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    dag_result: bool = False,
) -> MessageResponse:
    """Store the TI's own XCom. ``dag_result`` (the value is the DAG's result) is accepted
    and not kept: nothing in taskgate reads it."""
    await xcoms.push(session, requester, ref, value, map_index=map_index, mapped_length=mapped_length)
    return MessageResponse(message="XCom successfully set")


@router.delete("")
async def delete_xcom(
    ref: Ref, requester: Requester, session: DbSession, map_index: MapIndex = -1
) -> MessageResponse:
    await xcoms.remove(session, requester, ref, map_index=map_index)
    return MessageResponse(message=f"XCom with key: {ref.key} successfully deleted.")
