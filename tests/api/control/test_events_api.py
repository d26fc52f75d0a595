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


@pytest.fixture
def quick_rechecks(monkeypatch):
    """Keep-alives, and with them the credential's re-reads, every 0.2 s."""
    from taskgate.api.control import events as route

    monkeypatch.setattr(route, "KEEP_ALIVE_SECONDS", 0.2)
    monkeypatch.setattr(route, "RECHECK_SECONDS", 0.2)


def _lines_until_closed(stream: httpx.Response, limit: float) -> float:
    """Read ``stream`` until the server ends it; how long that took (fails past limit)."""
    started = time.monotonic()
    for _line in stream.iter_lines():
        assert time.monotonic() - started < limit, "the stream outlived its credential"
    return time.monotonic() - started


async def test_a_stream_ends_when_its_key_is_revoked(live_server, runtime, operator_key,
                                                     quick_rechecks):
    admin = await operator_key(Role.ADMIN)
    reader = await operator_key(Role.READER)  # op2

    def follow_then_revoke() -> float:
        with httpx.Client(base_url=live_server.url, timeout=10) as http:
            with http.stream("GET", EVENTS, headers=reader, params={"from_now": "true"}) as stream:
                assert stream.status_code == 200
                assert http.delete("/control/v1/operators/op2", headers=admin).status_code == 200
                return _lines_until_closed(stream, limit=5)

    assert await asyncio.to_thread(follow_then_revoke) < 5
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        assert (await http.get(EVENTS, headers=reader)).status_code == 401


async def test_a_stream_ends_when_its_session_is_signed_out(live_server, operator_key,
                                                            quick_rechecks):
    key = await operator_key(Role.READER)

    def follow_then_sign_out() -> float:
        with httpx.Client(base_url=live_server.url, timeout=10) as page:
            csrf = page.post("/control/v1/sessions", headers=key).json()["csrf_token"]
            with page.stream("GET", EVENTS, params={"from_now": "true"}) as stream:
                assert stream.status_code == 200
                signed_out = page.delete("/control/v1/sessions/current",
                                         headers={"X-CSRF-Token": csrf})
                assert signed_out.status_code == 204
                return _lines_until_closed(stream, limit=5)

    assert await asyncio.to_thread(follow_then_sign_out) < 5


async def test_from_now_skips_the_backlog(live_server, operator_key):
    admin = await operator_key(Role.ADMIN)

    def follow_from_now() -> None:
        with httpx.Client(base_url=live_server.url, headers=admin, timeout=10) as http:
            _sync_dag_with_run(http, "old")  # the backlog
            with http.stream("GET", EVENTS, params={"from_now": "true"}) as stream:
                assert http.put("/control/v1/dags/new", json={}).status_code == 200
                first = next(frames(stream))
            assert (first.event, first.data["target"]) == ("operator.action", "new")
            listed = http.get(EVENTS, params={"follow": "false", "from_now": "true"})
            assert listed.json() == []  # nothing after the newest: an empty backlog
            # ... and its resume point is the newest id, where a follower continues.
            newest = int(listed.headers["Taskgate-Resume-After"])
            assert newest == first.id
            everything = http.get(EVENTS, params={"follow": "false"})
            assert everything.json()[-1]["id"] == newest
            assert int(everything.headers["Taskgate-Resume-After"]) == newest
            first_two = http.get(EVENTS, params={"follow": "false", "limit": 2})
            assert int(first_two.headers["Taskgate-Resume-After"]) == first_two.json()[1]["id"]

    await asyncio.to_thread(follow_from_now)
