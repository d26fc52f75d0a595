"""The lifecycle service (``taskgate.services.lifecycle``): each step that changes a TI
also drops the token gate's cached standing of every TI it changed, so the next request
sees the change at once instead of up to a second later; and ``/run``'s token exchange
is the service's own."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from taskgate.runtime import Runtime
from taskgate.services import control
from taskgate.services.errors import TokenRefused, Unavailable
from taskgate.services.states import TIState
from taskgate.services.token_standing import revoked
from taskgate.tokens import Refusal, WorkloadToken

PROCESS = {"hostname": "h", "unixname": "u", "pid": 1, "start_date": datetime(2026, 1, 1, tzinfo=UTC)}


async def state_seen_by_gate(runtime: Runtime, ti_id: uuid.UUID) -> str:
    standing = await runtime.standing.get(ti_id)
    assert standing is not None
    return standing.state


async def test_each_step_is_seen_by_the_token_gate_at_once(runtime: Runtime, factory) -> None:  # type: ignore[no-untyped-def]
    assert runtime.settings.token_standing_cache_seconds > 0  # the cache is on
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "dag")
        run = await control.create_run(session, "dag", "r", ["up", "next"])
    up, following = (ti.id for ti in run.task_instances)
    elsewhere = (await factory.queued_ti(task_id="next")).id  # same task, another run

    assert await state_seen_by_gate(runtime, up) == TIState.SCHEDULED
    queued = await runtime.lifecycle.queue(up)
    assert await state_seen_by_gate(runtime, up) == TIState.QUEUED
    workload = runtime.validator.validate(queued.workload_token)
    assert isinstance(workload, WorkloadToken)
    started = await runtime.lifecycle.start(up, workload, **PROCESS)
    assert started.execution_token is not None
    assert runtime.validator.validate(started.execution_token).sub == up
    assert await state_seen_by_gate(runtime, up) == TIState.RUNNING

    before = time.time()
    await runtime.lifecycle.revoke_tokens(up)
    standing = await runtime.standing.get(up)
    assert standing is not None and revoked(before, standing.tokens_not_before)

    # skip-downstream changes other TIs of the run: each of those is seen at once too.
    assert await state_seen_by_gate(runtime, following) == TIState.SCHEDULED
    assert await state_seen_by_gate(runtime, elsewhere) == TIState.QUEUED
    assert await runtime.lifecycle.skip_downstream(up, ["next"]) == 1
    assert await state_seen_by_gate(runtime, following) == TIState.SKIPPED
    assert await state_seen_by_gate(runtime, elsewhere) == TIState.QUEUED

    await runtime.lifecycle.report_state(up, TIState.SUCCESS)
    assert await state_seen_by_gate(runtime, up) == TIState.SUCCESS


async def test_a_spent_workload_token_is_refused_by_the_service_itself(runtime: Runtime, factory) -> None:  # type: ignore[no-untyped-def]
    ti = await factory.queued_ti()
    workload = runtime.validator.validate(ti.workload_token)
    await runtime.lifecycle.start(ti.id, workload, **PROCESS)
    with pytest.raises(TokenRefused) as refused:
        await runtime.lifecycle.start(ti.id, workload, **PROCESS)
    assert refused.value.refusal is Refusal.WORKLOAD_TOKEN_REUSED


async def test_a_node_without_a_signing_key_cannot_exchange(runtime: Runtime, factory) -> None:  # type: ignore[no-untyped-def]
    ti = await factory.queued_ti()
    workload = runtime.validator.validate(ti.workload_token)
    runtime.issuer = None
    with pytest.raises(Unavailable):
        await runtime.lifecycle.start(ti.id, workload, **PROCESS)
    assert await state_seen_by_gate(runtime, ti.id) == TIState.QUEUED  # nothing was started
