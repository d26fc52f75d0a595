"""The event feed's rows: one per change, in the change's transaction, in commit order."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text, update

from taskgate.db.models import Event, TaskInstance, utcnow
from taskgate.runtime import Runtime
from taskgate.services import connections, control, events, operators, variables
from taskgate.services.errors import Conflict, Gone, InvalidRequest
from taskgate.services.operators import Role
from taskgate.services.states import TIState
from tests.conftest import Factory


async def _all(runtime: Runtime, **filters: object) -> list[events.EventRecord]:
    async with runtime.sessionmaker() as session:
        return await events.read(session, after=None, limit=10_000, **filters)  # type: ignore[arg-type]


def _ti_states(found: list[events.EventRecord]) -> list[tuple[str, str | None, str]]:
    return [(r.data["task_id"], r.data["from"], r.data["to"]) for r in found
            if r.kind == events.EventKind.TI_STATE]


async def test_a_run_and_its_lifecycle_write_one_event_per_change(runtime: Runtime, factory: Factory, client):
    ti, _token = await factory.running_ti(client, dag_id="etl", task_id="extract", team="data")
    await runtime.lifecycle.report_state(ti.id, TIState.SUCCESS)
    found = await _all(runtime)
    assert [r.id for r in found] == sorted(r.id for r in found)
    assert [(r.kind, r.data["action"]) for r in found if r.kind == "operator.action"] == [
        ("operator.action", "dag.put"), ("operator.action", "run.create"),
    ]
    assert _ti_states(found) == [
        ("extract", None, "scheduled"),
        ("extract", "scheduled", "queued"),
        ("extract", "queued", "running"),
        ("extract", "running", "success"),
    ]
    queued, started = [r for r in found if r.kind == "ti.state"][1:3]
    assert queued.data["actor"] == events.LOCAL_ACTOR
    assert started.data["actor"] == f"task:{ti.id}"
    assert started.data["try_number"] == 1 and started.data["ti_id"] == str(ti.id)
    assert {r.team for r in found} == {"data"}  # the DAG's team, read in the insert


async def test_a_refused_transition_writes_no_event(runtime: Runtime, factory: Factory, client):
    ti, _token = await factory.running_ti(client)
    before = await _all(runtime)
    with pytest.raises(Conflict):
        await runtime.lifecycle.queue(ti.id)  # running: not queueable
    await runtime.lifecycle.report_state(ti.id, TIState.FAILED)
    await runtime.lifecycle.report_state(ti.id, TIState.FAILED)  # an idempotent repeat
    after = await _all(runtime)
    assert _ti_states(after[len(before):]) == [("task", "running", "failed")]


async def test_a_run_that_fails_to_commit_leaves_no_event(runtime: Runtime):
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "d")
        await control.create_run(session, "d", "r", ["a", "b"])
    count = len(await _all(runtime))
    async with runtime.sessionmaker() as session:
        with pytest.raises(Conflict):
            await control.create_run(session, "d", "r", ["c"])
    assert len(await _all(runtime)) == count


async def test_revocation_and_skips_name_what_changed(runtime: Runtime, factory: Factory, client):
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "d")
        created = await control.create_run(session, "d", "r", ["up", "down", "other"])
    up, down, other = created.task_instances
    queued = await runtime.lifecycle.queue(other.id)
    started = await client.patch(
        f"/execution/task-instances/{queued.ti.id}/run",
        json={"hostname": "h", "unixname": "u", "pid": 1, "start_date": "2026-01-01T00:00:00Z"},
        headers={"Authorization": f"Bearer {queued.workload_token}"},
    )
    assert started.status_code == 200, started.text
    mark = await runtime.lifecycle.revoke_tokens(up.id, actor="someone")
    assert await runtime.lifecycle.skip_downstream(other.id, ["up", "down"]) == 2
    found = await _all(runtime)
    revoked = [r for r in found if r.kind == "ti.revoked"]
    assert [(r.data["ti_id"], r.data["tokens_not_before"], r.data["actor"]) for r in revoked] == [
        (str(up.id), mark, "someone")
    ]
    skips = [r.data for r in found if r.kind == "ti.state" and r.data["to"] == "skipped"]
    assert sorted((s["task_id"], s["from"], s["actor"]) for s in skips) == [
        ("down", "scheduled", f"task:{other.id}"), ("up", "scheduled", f"task:{other.id}"),
    ]
    assert {s["ti_id"] for s in skips} == {str(up.id), str(down.id)}


async def test_operator_actions_carry_their_team_and_never_a_secret(runtime: Runtime):
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "k", "s3cret", team="ml", actor="alice")
        await connections.put(
            session, runtime.secrets, "db", connections.parse_uri("postgres://u:pw@h/d"), actor="alice"
        )
        await variables.delete_key(session, "k", actor="bob")
        assert not await variables.delete_key(session, "k", actor="bob")  # nothing to delete
        await operators.add_operator(session, "ci", Role.READER, ["ml"], actor="alice")
        await operators.revoke_operator(session, "ci", actor="alice")
    found = await _all(runtime)
    assert [(r.data["action"], r.data["target"], r.team, r.data["actor"]) for r in found] == [
        ("variable.put", "k", "ml", "alice"),
        ("connection.put", "db", None, "alice"),
        ("variable.delete", "k", "ml", "bob"),
        ("operator.add", "ci", None, "alice"),
        ("operator.revoke", "ci", None, "alice"),
    ]
    assert all("s3cret" not in r.data_json and "pw" not in r.data_json for r in found)


async def test_team_and_dag_filters(runtime: Runtime, factory: Factory):
    await factory.queued_ti(dag_id="a", team="red")
    await factory.queued_ti(dag_id="b", team="blue")
    assert {r.dag_id for r in await _all(runtime, teams={"red"})} == {"a"}
    assert {r.team for r in await _all(runtime, dag_id="b")} == {"blue"}
    assert await _all(runtime, teams={"green"}) == []
    record = (await _all(runtime, dag_id="a"))[0]
    assert record.visible_to({"red"}, None) and not record.visible_to({"blue"}, None)
    assert not record.visible_to((), "b") and record.visible_to((), "a")


async def test_a_resume_point_before_the_retention_is_gone(runtime: Runtime, factory: Factory):
    await factory.queued_ti()
    async with runtime.sessionmaker() as session:
        first = (await events.read(session, after=None))[0].id
        # Age every event by a day, then purge with a retention of an hour.
        await session.execute(update(Event).values(at=utcnow() - timedelta(days=1)))
        await session.commit()
        latest = await events.latest_id(session)
        stored = await session.scalar(select(func.count()).select_from(Event))
        assert await events.purge(session, timedelta(hours=1)) == stored
        assert await session.scalar(select(func.count()).select_from(Event)) == 0
        assert await events.horizon(session) == latest
        with pytest.raises(Gone) as gone:
            await events.read(session, after=first)
        assert gone.value.reason == "events_expired" and gone.value.extra["horizon"] == latest
        assert await events.read(session, after=latest) == []  # resuming at the horizon is fine
        with pytest.raises(InvalidRequest) as unknown:
            await events.read(session, after=latest + 5)
        assert unknown.value.reason == "unknown_event_id"
    await factory.queued_ti()  # ids keep rising after a purge that emptied the table
    newer = await _all(runtime)
    assert newer and newer[0].id > latest


async def test_follow_yields_the_backlog_then_new_events(runtime: Runtime, factory: Factory):
    await factory.queued_ti(task_id="old")
    seen: list[events.EventRecord] = []

    async def follower() -> None:
        async for record in events.follow(runtime.sessionmaker, after=None, poll_interval=0.05):
            seen.append(record)
            if record.data.get("task_id") == "new" and record.data.get("to") == "queued":
                return

    task = asyncio.create_task(follower())
    await asyncio.sleep(0.2)
    await factory.queued_ti(task_id="new")
    await asyncio.wait_for(task, 5)
    assert _ti_states(seen) == [
        ("old", None, "scheduled"), ("old", "scheduled", "queued"),
        ("new", None, "scheduled"), ("new", "scheduled", "queued"),
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_ids_become_visible_in_the_order_they_rise(runtime: Runtime):
    """Concurrent writers, a reader resuming after the last id it saw: it must end up with
    every id. Each writer's transaction first makes its change (here: takes its
    transaction id, as a write would) and commits a moment later, so on PostgreSQL a
    transaction that began earlier often commits after one that began later."""
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "d")
    writers, per_writer = 10, 60
    on_postgresql = runtime.engine.dialect.name == "postgresql"
    done = asyncio.Event()
    seen: list[int] = []

    async def write(n: int) -> None:
        for i in range(per_writer):
            async with runtime.sessionmaker() as session:
                if on_postgresql:
                    await session.execute(text("SELECT pg_current_xact_id()"))
                await asyncio.sleep(random.random() / 500)
                await events.commit(session, "w", [events.operator_action("x", f"{n}/{i}", dag_id="d")])

    async def read() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            async with runtime.sessionmaker() as session:
                batch = await events.read(session, after=cursor, check_resume=False)
            seen.extend(r.id for r in batch)
            cursor = seen[-1] if seen else cursor
            if finished and not batch:
                return
            await asyncio.sleep(0)

    reader = asyncio.create_task(read())
    await asyncio.gather(*(write(n) for n in range(writers)))
    done.set()
    await reader
    async with runtime.sessionmaker() as session:
        stored = list((await session.execute(select(Event.id).order_by(Event.id))).scalars())
    assert seen == stored
    assert len(stored) == writers * per_writer + 1


async def test_ti_rows_and_events_agree(runtime: Runtime, factory: Factory, client):
    """Each TI's last ti.state event names the state its row is in."""
    for _ in range(3):
        ti, _token = await factory.running_ti(client)
        await runtime.lifecycle.report_state(ti.id, TIState.UP_FOR_RETRY)
    async with runtime.sessionmaker() as session:
        rows = {str(i): s for i, s in await session.execute(select(TaskInstance.id, TaskInstance.state))}
    last: dict[str, str] = {}
    for record in await _all(runtime):
        if record.kind == "ti.state":
            last[record.data["ti_id"]] = record.data["to"]
    assert last == rows
    assert all(uuid.UUID(k) for k in last)


async def test_the_horizon_only_rises(runtime: Runtime, factory: Factory):
    await factory.queued_ti()
    async with runtime.sessionmaker() as session:
        await session.execute(update(Event).values(at=utcnow() - timedelta(days=1)))
        await session.commit()
        await events.purge(session, timedelta(hours=1))
        high = await events.horizon(session)
        # A purge that saw less (another replica's, a moment late) leaves it where it is.
        session.add(Event(id=1, kind="x", at=utcnow() - timedelta(days=1), actor="a", data="{}"))
        await session.commit()
        assert await events.purge(session, timedelta(hours=1)) == 1
        assert await events.horizon(session) == high
