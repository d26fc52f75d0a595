"""Task-instance routes: what a worker does to its own TI. Each is an adapter over the
lifecycle service (``runtime.lifecycle``) or the TI's data (``services.task_instances``).

Security policy: every route is bound to its own TI (``ti:self``: the token's ``sub`` must
be ``{task_instance_id}``) and takes execution tokens; ``/run`` alone also takes the
workload token, which the lifecycle exchanges for an execution token (once: workload
tokens are single-use). The state-machine routes (``/run``, ``/state``) are on
``lifecycle_router``, which adds ``ti:lifecycle``: for an ended TI the state machine
answers there (409, or 204 for an identical final report) so the worker stops at once;
every route of ``router`` refuses an ended TI's token with 403. ``/heartbeat`` is on
``heartbeat_router``, a lifecycle route whose own UPDATE is its token gate
(``ti:gate-in-write``, see ``taskgate.security.routing``).

Each router declares its scopes in one ``require_auth`` rather than adding scopes per
route, so a heartbeat (the most frequent request of all) resolves one ``require_auth``
instead of two. These three routers and ``task_instance_queries`` share the prefix; no
request matches routes of two of them (``tests/api/test_route_order.py``), so their
order in ``app.EXECUTION_ROUTERS`` decides only how soon a request finds its route.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Request, Response, Security, status

from taskgate.api.deps import DbSession, RuntimeDep
from taskgate.api.responses import CONFLICT, NOT_FOUND
from taskgate.runtime import Runtime
from taskgate.security import CurrentToken, ProvenKey, TaskRoute, authenticate, require_auth
from taskgate.services import task_instances
from taskgate.services.states import TIState
from taskgate.wire import task_instances as wire
from taskgate.wire.http import REFRESHED_TOKEN_HEADER, TASK_INSTANCES
from taskgate.wire.runtime_data import FiniteJson, MessageResponse

router = APIRouter(
    prefix=TASK_INSTANCES,
    tags=["Task Instances"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth, scopes=["ti:self"])],
    responses=NOT_FOUND,
)

lifecycle_router = APIRouter(
    prefix=TASK_INSTANCES,
    tags=["Task Instances"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth, scopes=["ti:self", "ti:lifecycle"])],
    responses={**NOT_FOUND, **CONFLICT},
)

# The heartbeat alone (ti:gate-in-write).
heartbeat_router = APIRouter(
    prefix=TASK_INSTANCES,
    tags=["Task Instances"],
    route_class=TaskRoute,
    dependencies=[Security(require_auth, scopes=["ti:self", "ti:lifecycle", "ti:gate-in-write"])],
    responses={**NOT_FOUND, **CONFLICT},
)

TIId = uuid.UUID


@lifecycle_router.patch(
    "/{task_instance_id}/run",
    dependencies=[Security(require_auth, scopes=["token:execution", "token:workload"])],
)
async def run(
    task_instance_id: TIId,
    payload: wire.TIEnterRunningPayload,
    token: CurrentToken,
    proven_key: ProvenKey,
    runtime: RuntimeDep,
    response: Response,
) -> wire.TIRunContext:
    """Start the TI (queued -> running) and answer with its run context.

    With a workload token the answer carries an execution token in ``Refreshed-API-Token``,
    bound to the key of the request's DPoP proof if it has one.
    """
    started = await runtime.lifecycle.start(
        task_instance_id,
        token,
        hostname=payload.hostname,
        unixname=payload.unixname,
        pid=payload.pid,
        start_date=payload.start_date,
        bind_to=proven_key,
    )
    if started.execution_token is not None:
        response.headers[REFRESHED_TOKEN_HEADER] = started.execution_token
    return wire.TIRunContext.model_validate(started.context, from_attributes=True)


@lifecycle_router.patch("/{task_instance_id}/state", status_code=status.HTTP_204_NO_CONTENT)
async def update_state(
    task_instance_id: TIId, payload: wire.TIStateUpdate, runtime: RuntimeDep
) -> None:
    """Report the outcome of the running TI."""
    details: dict[str, object] = {
        "end_date": getattr(payload, "end_date", None),
        "rendered_map_index": getattr(payload, "rendered_map_index", None),
    }
    if isinstance(payload, wire.TIDeferredStatePayload | wire.TIAwaitingInputStatePayload):
        details.update(next_method=payload.next_method, next_kwargs=payload.next_kwargs)
    if isinstance(payload, wire.TIRescheduleStatePayload):
        details.update(reschedule_date=payload.reschedule_date)
    await runtime.lifecycle.report_state(task_instance_id, TIState(payload.state), **details)


@heartbeat_router.put("/{task_instance_id}/heartbeat", status_code=status.HTTP_204_NO_CONTENT)
async def heartbeat(
    task_instance_id: TIId, payload: wire.TIHeartbeatInfo, request: Request
) -> None:
    """Keep the running TI alive; only its own process (hostname and pid) may."""
    # The runtime and the (cached) token straight from the request, not through
    # RuntimeDep and CurrentToken: fewer dependencies to resolve on the most frequent
    # request (FastAPI's resolution is most of its cost).
    await Runtime.of(request).lifecycle.heartbeat(
        task_instance_id,
        hostname=payload.hostname,
        pid=payload.pid,
        token_iat=(await authenticate(request)).iat,
    )


@router.put("/{task_instance_id}/rtif", status_code=status.HTTP_201_CREATED)
async def set_rendered_fields(
    task_instance_id: TIId, fields: Annotated[dict[str, FiniteJson], Body()], session: DbSession
) -> MessageResponse:
    """Store the TI's rendered template fields."""
    await task_instances.set_rendered_fields(session, task_instance_id, fields)
    return MessageResponse(message="Rendered task instance fields successfully set")


@router.patch(
    "/{task_instance_id}/rendered-map-index", status_code=status.HTTP_204_NO_CONTENT
)
async def set_rendered_map_index(
    task_instance_id: TIId,
    rendered_map_index: Annotated[str, Body(min_length=1, max_length=250)],
    session: DbSession,
) -> None:
    await task_instances.set_rendered_map_index(session, task_instance_id, rendered_map_index)


@router.patch("/{task_instance_id}/skip-downstream", status_code=status.HTTP_204_NO_CONTENT)
async def skip_downstream(
    task_instance_id: TIId,
    payload: wire.TISkippedDownstreamTasksStatePayload,
    runtime: RuntimeDep,
) -> None:
    """Mark the listed downstream TIs of the same run as skipped."""
    await runtime.lifecycle.skip_downstream(task_instance_id, payload.tasks)


@router.get("/{task_instance_id}/previous-successful-dagrun")
async def previous_successful_dagrun(
    task_instance_id: TIId, session: DbSession
) -> wire.PrevSuccessfulDagRunResponse:
    dag_run = await task_instances.previous_successful_dag_run(session, task_instance_id)
    if dag_run is None:
        return wire.PrevSuccessfulDagRunResponse()
    return wire.PrevSuccessfulDagRunResponse.model_validate(dag_run, from_attributes=True)


@router.get("/{task_instance_id}/validate-inlets-and-outlets")
async def validate_inlets_and_outlets(
    task_instance_id: TIId, session: DbSession
) -> wire.InactiveAssetsResponse:
    """Which of the task's inlet and outlet assets are inactive. taskgate keeps no asset
    registry, so no asset is ever inactive: the answer is an empty list."""
    await task_instances.get_task_instance(session, task_instance_id)
    return wire.InactiveAssetsResponse(inactive_assets=[])
