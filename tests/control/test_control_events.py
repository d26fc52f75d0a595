"""``events()`` of both control clients against `taskgate serve`: the backlog, following
new events, resuming across a server restart without losing or repeating one, and 410
for a resume point that was purged."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

from taskgate.control import ApiError, AsyncControlClient, ControlClient, Event, TokenRejected
from taskgate.services import operators
from taskgate.services.operators import Role
from tests.support.processes import free_port, run_cli, serve_env, start_serve

pytestmark = pytest.mark.integration


async def _key(runtime, role: Role = Role.READER) -> str:
    async with runtime.sessionmaker() as session:
        return (await operators.add_operator(session, "follower", role)).key


def _follow(url: str, key: str, after: int | None) -> queue.Queue[Event]:
    """Events as a background thread's ``ControlClient.events`` yields them."""
    got: queue.Queue[Event] = queue.Queue()

    def follow() -> None:
        with ControlClient(url, key) as control:
            for event in control.events(after=after):
                got.put(event)

    threading.Thread(target=follow, daemon=True).start()
    return got


def _take(got: queue.Queue[Event], n: int) -> list[Event]:
    return [got.get(timeout=30) for _ in range(n)]


async def test_follow_resumes_across_a_restart(settings, runtime) -> None:
    env = serve_env(settings)
    key = await _key(runtime)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_serve(env, port)
    try:
        run_cli(env, "dags", "add", "etl")
        with ControlClient(url, key) as control:
            backlog = control.list_events()
            assert {e.kind for e in backlog} == {"operator.action"}  # the key made, the DAG
            assert backlog[-1].data["action"] == "dag.put"
            assert backlog[-1].raw["event"] == "operator.action"
            start = backlog[-1].id
        got = _follow(url, key, start)

        run_cli(env, "runs", "create", "etl", "r1", "--task", "a")
        first = _take(got, 2)  # the run, its TI scheduled
        assert [e.kind for e in first] == ["operator.action", "ti.state"]

        server.terminate()
        server.wait(timeout=15)
        run_cli(env, "runs", "create", "etl", "r2", "--task", "a")  # while no server is up
        server = start_serve(env, port)
        run_cli(env, "runs", "create", "etl", "r3", "--task", "a")
        rest = _take(got, 4)
        ids = [e.id for e in first + rest]
        with ControlClient(url, key) as control:
            stored = [e.id for e in control.list_events(after=start)]
        assert ids == stored and len(stored) == 6  # none lost, none twice, in order
        assert [e.data.get("run_id") for e in rest] == ["r2", "r2", "r3", "r3"]
        assert got.empty()
    finally:
        server.terminate()
        server.wait(timeout=15)


async def test_async_events_and_refusals(live_server, runtime, factory) -> None:
    key = await _key(runtime)
    await factory.queued_ti(dag_id="etl", task_id="t")
    async with AsyncControlClient(live_server.url, key) as control:
        backlog = await control.list_events(dag_id="etl")
        assert [e.data.get("to") for e in backlog if e.kind == "ti.state"] == ["scheduled", "queued"]

        async def first_two() -> list[Event]:
            seen = []
            async for event in control.events(dag_id="etl"):
                seen.append(event)
                if len(seen) == 2:
                    return seen
            return seen

        followed = await asyncio.wait_for(first_two(), 30)
        assert [e.id for e in followed] == [e.id for e in backlog[:2]]

        with pytest.raises(ApiError) as ahead:
            await control.list_events(after=backlog[-1].id + 2**60)
        assert ahead.value.status == 400

    async with AsyncControlClient(live_server.url, "tgk_unknown") as control:
        with pytest.raises(TokenRejected):
            await anext(control.events())


async def test_a_purged_resume_point_raises(live_server, runtime, factory) -> None:
    from datetime import timedelta

    from taskgate.services import events

    key = await _key(runtime)
    await factory.queued_ti()
    await factory.queued_ti()
    async with runtime.sessionmaker() as session:
        assert await events.purge(session, timedelta(seconds=-1)) > 0
    with ControlClient(live_server.url, key) as control:
        with pytest.raises(ApiError) as expired:
            next(control.events(after=1))
    assert (expired.value.status, expired.value.reason) == (410, "events_expired")
