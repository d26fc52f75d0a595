"""Task-instance lifecycle and state machine (in-process app, real database)."""

import asyncio
import uuid

import pytest

from taskgate.services import control
from tests.support.api import BEAT_BODY, RUN_BODY, SUCCESS_BODY, bearer


def url(ti_id, suffix):
    return f"/execution/task-instances/{ti_id}/{suffix}"


async def ti_row(runtime, ti_id):
    from taskgate.services.task_instances import get_task_instance

    async with runtime.sessionmaker() as session:
        return await get_task_instance(session, ti_id)


async def test_run_context_matches_the_sdk_model(client, factory):
    ti = await factory.queued_ti(max_tries=2)
    response = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(ti.workload_token))
    assert response.status_code == 200
    body = response.json()
    assert body["dag_run"]["dag_id"] == ti.dag_id and body["dag_run"]["run_id"] == ti.run_id
    assert body["dag_run"]["run_type"] == "manual" and body["dag_run"]["consumed_asset_events"] == []
    assert body["max_tries"] == 2 and body["should_retry"] is True
    assert body["variables"] == [] and body["connections"] == [] and body["xcom_keys_to_clear"] == []


async def test_run_only_from_queued(client, factory, runtime):
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "d")
        created = await control.create_run(session, "d", "r", ["t"])
    ti_id = created.task_instances[0].id
    response = await client.patch(url(ti_id, "run"), json=RUN_BODY, headers=bearer(factory.token(ti_id)))
    assert response.status_code == 409
    assert response.json()["detail"] == {
        "reason": "invalid_state",
        "message": "TI was not in a state where it could be marked as running",
        "previous_state": "scheduled",
    }


async def test_identical_run_repeat_is_ok_but_another_process_is_refused(client, factory):
    ti, token = await factory.running_ti(client)
    again = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(token))
    assert again.status_code == 200
    other = await client.patch(url(ti.id, "run"), json={**RUN_BODY, "pid": 9}, headers=bearer(token))
    assert other.status_code == 409
    assert other.json()["detail"]["previous_state"] == "running"


async def test_heartbeat_rules(client, factory):
    ti, token = await factory.running_ti(client)
    auth = bearer(token)
    assert (await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=auth)).status_code == 204
    elsewhere = await client.put(url(ti.id, "heartbeat"), json={**BEAT_BODY, "pid": 1}, headers=auth)
    assert elsewhere.status_code == 409
    assert elsewhere.json()["detail"]["reason"] == "running_elsewhere"
    assert (await client.patch(url(ti.id, "state"), json=SUCCESS_BODY, headers=auth)).status_code == 204
    stopped = await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=auth)
    assert stopped.status_code == 409
    assert stopped.json()["detail"] == {
        "reason": "not_running",
        "message": "TI is no longer in the running state and task should terminate",
        "current_state": "success",
    }


async def test_terminal_state_is_final_but_an_identical_report_is_accepted(client, factory, runtime):
    ti, token = await factory.running_ti(client)
    auth = bearer(token)
    assert (await client.patch(url(ti.id, "state"), json=SUCCESS_BODY, headers=auth)).status_code == 204
    end_date = (await ti_row(runtime, ti.id)).end_date
    repeat = await client.patch(
        url(ti.id, "state"), json={**SUCCESS_BODY, "end_date": "2026-02-02T00:00:00Z"}, headers=auth
    )
    assert repeat.status_code == 204
    assert (await ti_row(runtime, ti.id)).end_date == end_date  # the repeat wrote nothing
    failed = await client.patch(
        url(ti.id, "state"), json={"state": "failed", "end_date": "2026-01-01T00:00:00Z"}, headers=auth
    )
    assert failed.status_code == 409
    assert failed.json()["detail"]["previous_state"] == "success"
    rerun = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=auth)
    assert rerun.status_code == 409
    with pytest.raises(control.Conflict):
        await runtime.lifecycle.queue(ti.id)


async def test_retry_then_final_failure(client, factory, runtime):
    ti, token = await factory.running_ti(client, max_tries=1)
    retry = {"state": "up_for_retry", "end_date": "2026-01-01T00:01:00Z", "retry_reason": "boom"}
    assert (await client.patch(url(ti.id, "state"), json=retry, headers=bearer(token))).status_code == 204
    row = await ti_row(runtime, ti.id)
    assert (row.state, row.try_number) == ("up_for_retry", 1)
    queued = await runtime.lifecycle.queue(ti.id)
    assert queued.ti.try_number == 2
    run = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(queued.workload_token))
    assert run.json()["should_retry"] is False
    token2 = run.headers["Refreshed-API-Token"]
    fail = {"state": "failed", "end_date": "2026-01-01T00:02:00Z"}
    assert (await client.patch(url(ti.id, "state"), json=fail, headers=bearer(token2))).status_code == 204
    assert (await ti_row(runtime, ti.id)).state == "failed"


@pytest.mark.parametrize(
    "payload",
    [
        {"state": "deferred", "classpath": "x.Trigger", "next_method": "resume", "next_kwargs": {"a": 1}},
        {"state": "up_for_reschedule", "reschedule_date": "2026-01-01T01:00:00Z",
         "end_date": "2026-01-01T00:00:00Z"},
        {"state": "skipped", "end_date": "2026-01-01T00:00:00Z", "rendered_map_index": "label"},
    ],
)
async def test_other_state_reports(client, factory, runtime, payload):
    ti, token = await factory.running_ti(client)
    response = await client.patch(url(ti.id, "state"), json=payload, headers=bearer(token))
    assert response.status_code == 204
    row = await ti_row(runtime, ti.id)
    assert row.state == payload["state"]
    if payload["state"] == "deferred":
        assert (row.next_method, row.next_kwargs) == ("resume", {"a": 1})
    if "rendered_map_index" in payload:
        assert row.rendered_map_index == "label"


@pytest.mark.parametrize(
    "suffix,method,body",
    [
        ("run", "PATCH", {**RUN_BODY, "start_date": "2026-01-01T00:00:00"}),  # naive datetime
        ("run", "PATCH", {**RUN_BODY, "pid": "many"}),
        ("run", "PATCH", {"state": "running"}),
        ("state", "PATCH", {"state": "running", "end_date": "2026-01-01T00:00:00Z"}),
        ("state", "PATCH", {"state": "success"}),
        ("heartbeat", "PUT", {"hostname": "h"}),
        ("heartbeat", "PUT", {**BEAT_BODY, "extra": 1}),
        ("rendered-map-index", "PATCH", ""),
        ("rendered-map-index", "PATCH", {"not": "a string"}),
        ("rtif", "PUT", ["not", "an", "object"]),
    ],
)
async def test_bad_bodies_are_422_and_change_nothing(client, factory, runtime, suffix, method, body):
    ti, token = await factory.running_ti(client)
    before = (await ti_row(runtime, ti.id)).state
    response = await client.request(method, url(ti.id, suffix), json=body, headers=bearer(token))
    assert response.status_code == 422, response.text
    assert (await ti_row(runtime, ti.id)).state == before


async def test_invalid_json_is_422(client, factory):
    ti, token = await factory.running_ti(client)
    response = await client.put(
        url(ti.id, "heartbeat"), content=b"{not json", headers={**bearer(token), "content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_unknown_task_instance_is_404(client, factory):
    ghost = uuid.uuid4()
    response = await client.patch(url(ghost, "run"), json=RUN_BODY, headers=bearer(factory.token(ghost)))
    assert response.status_code == 404
    assert response.json()["detail"]["reason"] == "not_found"


async def test_concurrent_runs_have_exactly_one_winner(client, factory, runtime):
    ti = await factory.queued_ti()
    token = bearer(ti.workload_token)
    bodies = [{**RUN_BODY, "pid": 1000 + i} for i in range(50)]
    responses = await asyncio.gather(
        *(client.patch(url(ti.id, "run"), json=b, headers=token) for b in bodies)
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1 and statuses.count(409) == 49, statuses
    winner = next(b for b, r in zip(bodies, responses) if r.status_code == 200)
    assert (await ti_row(runtime, ti.id)).pid == winner["pid"]


async def test_rendered_fields_map_index_and_skip_downstream(client, factory, runtime):
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "d")
        created = await control.create_run(session, "d", "r", ["up", "down1", "down2"])
        up = created.task_instances[0]
        queued = await runtime.lifecycle.queue(up.id)
    run = await client.patch(url(up.id, "run"), json=RUN_BODY, headers=bearer(queued.workload_token))
    auth = bearer(run.headers["Refreshed-API-Token"])
    rtif = await client.put(url(up.id, "rtif"), json={"bash_command": "echo 1"}, headers=auth)
    assert rtif.status_code == 201
    assert (await client.patch(url(up.id, "rendered-map-index"), json="lbl", headers=auth)).status_code == 204
    skip = await client.patch(url(up.id, "skip-downstream"), json={"tasks": ["down1"]}, headers=auth)
    assert skip.status_code == 204
    async with runtime.sessionmaker() as session:
        from taskgate.services.task_instances import get_rendered_fields

        assert await get_rendered_fields(session, up.id) == {"bash_command": "echo 1"}
        states = {t.task_id: t.state for t in await control.list_task_instances(session, dag_id="d")}
    assert states == {"up": "running", "down1": "skipped", "down2": "scheduled"}
    assert (await ti_row(runtime, up.id)).rendered_map_index == "lbl"
    prev = await client.get(url(up.id, "previous-successful-dagrun"), headers=auth)
    assert prev.status_code == 200 and prev.json() == {
        "data_interval_start": None, "data_interval_end": None, "start_date": None, "end_date": None
    }


async def test_concurrent_state_reports_have_exactly_one_winner(client, factory, runtime):
    ti, token = await factory.running_ti(client)
    states = ["success", "failed", "skipped", "up_for_retry"] * 5
    responses = await asyncio.gather(*(
        client.patch(url(ti.id, "state"), json={"state": s, "end_date": "2026-01-01T00:05:00Z"},
                     headers=bearer(token))
        for s in states
    ))
    winners = {s for s, r in zip(states, responses) if r.status_code == 204}
    # Identical repeats of the winning state are accepted too; every other report is refused.
    assert len(winners) == 1, [r.status_code for r in responses]
    assert all(r.status_code in (204, 409, 403) for r in responses)
    assert (await ti_row(runtime, ti.id)).state == winners.pop()


async def test_concurrent_heartbeats_all_land(client, factory, runtime):
    ti, token = await factory.running_ti(client)
    responses = await asyncio.gather(*(
        client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=bearer(token)) for _ in range(30)
    ))
    assert {r.status_code for r in responses} == {204}
    assert (await ti_row(runtime, ti.id)).state == "running"
