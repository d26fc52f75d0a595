"""GET /control/v1/events: the backlog as JSON, the stream as Server-Sent Events, resume
points, retention, roles and teams."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from taskgate.db.models import Event, utcnow
from taskgate.services import events
from taskgate.services.operators import Role
from tests.support.sse import frames

EVENTS = "/control/v1/events"


async def _dag_with_run(client, headers, dag_id: str, team: str | None = None) -> list[str]:
    assert (await client.put(f"/control/v1/dags/{dag_id}", json={"team": team},
                             headers=headers)).status_code == 200
    created = await client.post(f"/control/v1/dags/{dag_id}/runs",
                                json={"run_id": "r1", "tasks": ["a", "b"]}, headers=headers)
    assert created.status_code == 201, created.text
    return [ti["id"] for ti in created.json()["task_instances"]]


async def test_the_backlog_as_json_names_each_change_and_its_actor(client, operator_key):
    admin = await operator_key(Role.ADMIN)
    a, _b = await _dag_with_run(client, admin, "etl")
    assert (await client.post(f"/control/v1/task-instances/{a}/queue", headers=admin)).status_code == 200
    backlog = (await client.get(EVENTS, params={"follow": "false"}, headers=admin)).json()
    assert [e["data"].get("action") or e["data"]["to"] for e in backlog] == [
        "operator.add", "dag.put", "run.create", "scheduled", "scheduled", "queued",
    ]
    assert [e["id"] for e in backlog] == sorted(e["id"] for e in backlog)
    queued = backlog[-1]["data"]
    assert (queued["ti_id"], queued["from"], queued["to"], queued["actor"]) == (a, "scheduled", "queued", "op1")
    assert {"dag_id", "run_id", "task_id", "map_index", "try_number", "at"} <= set(queued)
    after = backlog[2]["id"]
    rest = (await client.get(EVENTS, params={"follow": "false", "after": after}, headers=admin)).json()
    assert rest == backlog[3:]
    limited = await client.get(EVENTS, params={"follow": "false", "limit": 2}, headers=admin)
    assert limited.json() == backlog[:2]


async def test_last_event_id_wins_over_after_and_must_be_an_id(client, operator_key):
    admin = await operator_key(Role.ADMIN)
    await _dag_with_run(client, admin, "etl")
    backlog = (await client.get(EVENTS, params={"follow": "false"}, headers=admin)).json()
    resumed = await client.get(EVENTS, params={"follow": "false", "after": 0},
                               headers={**admin, "Last-Event-ID": str(backlog[2]["id"])})
    assert resumed.json() == backlog[3:]
    for bad in ("abc", "-1", "1e3", "+5", "1_000", "٣".encode()):
        answer = await client.get(EVENTS, params={"follow": "false"},
                                  headers={**admin, "Last-Event-ID": bad})
        assert answer.status_code == 400, bad
        assert answer.json()["detail"]["reason"] == "invalid_last_event_id"
    future = await client.get(EVENTS, params={"follow": "false", "after": backlog[-1]["id"] + 10},
                              headers=admin)
    assert (future.status_code, future.json()["detail"]["reason"]) == (400, "unknown_event_id")


async def test_teams_and_the_dag_filter(client, operator_key):
    admin = await operator_key(Role.ADMIN)
    await _dag_with_run(client, admin, "etl_dag", "etl")
    await _dag_with_run(client, admin, "ml_dag", "ml")
    etl_reader = await operator_key(Role.READER, "etl")
    seen = (await client.get(EVENTS, params={"follow": "false"}, headers=etl_reader)).json()
    assert seen and {e["data"]["dag_id"] for e in seen} == {"etl_dag"}
    other = await client.get(EVENTS, params={"follow": "false", "dag_id": "ml_dag"}, headers=etl_reader)
    assert (other.status_code, other.json()["detail"]["reason"]) == (403, "team_required")
    only_ml = (await client.get(EVENTS, params={"follow": "false", "dag_id": "ml_dag"},
                                headers=admin)).json()
    assert only_ml and {e["data"]["dag_id"] for e in only_ml} == {"ml_dag"}
    assert (await client.get(EVENTS, params={"follow": "false"})).status_code == 401


async def test_a_resume_point_older_than_the_retention_is_410(client, runtime, operator_key):
    admin = await operator_key(Role.ADMIN)
    await _dag_with_run(client, admin, "etl")
    first = (await client.get(EVENTS, params={"follow": "false"}, headers=admin)).json()[0]["id"]
    async with runtime.sessionmaker() as session:
        await session.execute(update(Event).values(at=utcnow() - timedelta(days=8)))
        await session.commit()
    assert await runtime.purge("events") > 0  # the default retention: 7 days
    for params in ({"follow": "false", "after": first}, {"after": first}):
        gone = await client.get(EVENTS, params=params, headers=admin)
        assert gone.status_code == 410
        assert gone.json()["detail"]["reason"] == "events_expired"
        assert "purged" in gone.json()["detail"]["message"]


@pytest.mark.integration
async def test_the_stream_delivers_each_change_within_a_second_and_resumes_exactly(
    live_server, operator_key
):
    admin = await operator_key(Role.ADMIN)
    await asyncio.to_thread(_stream_and_resume, live_server.url, admin)


def _stream_and_resume(url: str, admin: dict[str, str]) -> None:
    with httpx.Client(base_url=url, headers=admin, timeout=10) as http:
        ids = _sync_dag_with_run(http, "etl")
        latest = http.get(EVENTS, params={"follow": "false"}).json()[-1]["id"]
        received = []
        with http.stream("GET", EVENTS, params={"after": latest}) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            frame_iter = frames(stream)
            for ti_id in ids:
                sent = time.monotonic()
                assert http.post(f"/control/v1/task-instances/{ti_id}/queue").status_code == 200
                frame = next(frame_iter)
                received.append(frame)
                assert frame.received - sent < 1.0
                assert (frame.event, frame.data["ti_id"], frame.data["to"]) == ("ti.state", ti_id, "queued")
        assert [f.id for f in received] == sorted(f.id for f in received) and received[0].id > latest
        # A reconnect with Last-Event-ID gets what came after, and nothing before.
        with http.stream("GET", EVENTS, headers={"Last-Event-ID": str(received[0].id)}) as again:
            assert next(frames(again)).id == received[1].id


def _sync_dag_with_run(http: httpx.Client, dag_id: str) -> list[str]:
    assert http.put(f"/control/v1/dags/{dag_id}", json={}).status_code == 200
    created = http.post(f"/control/v1/dags/{dag_id}/runs", json={"run_id": "r", "tasks": ["a", "b"]})
    assert created.status_code == 201, created.text
    return [ti["id"] for ti in created.json()["task_instances"]]


async def test_a_stopping_feed_ends_its_streams(runtime, factory):
    await factory.queued_ti()

    async def drain() -> list[events.EventRecord | None]:
        return [item async for item in runtime.events.follow(after=None, idle=0.05)]

    task = asyncio.create_task(drain())
    await asyncio.sleep(0.5)
    assert not task.done()
    runtime.events.stop()
    got = await asyncio.wait_for(task, 2)
    assert [r.kind for r in got if r is not None][-1] == "ti.state"  # the backlog came first
    assert None in got  # and keep-alive ticks while idle
