"""The routes the Task SDK 1.3 worker calls beyond the core lifecycle: reads of other TIs
and DAG runs (own DAG only), reschedules, the task state store, XCom offsets and prior
dates, and the Airflow-API-Version header."""

from __future__ import annotations

import pytest

from taskgate.services import access, xcoms
from tests.support.api import bearer

API = "/execution"


@pytest.fixture
async def running(client, factory):
    ti, token = await factory.running_ti(client, dag_id="etl", task_id="extract", run_id="r1")
    return ti, bearer(token)


async def test_api_version_header(client):
    plain = await client.get(f"{API}/health")
    assert plain.headers["airflow-api-version"] == "2026-06-30"
    for sent in ("2026-06-30", "2099-01-01"):
        response = await client.get(f"{API}/health", headers={"Airflow-API-Version": sent})
        assert response.status_code == 200
        assert response.headers["airflow-api-version"] == "2026-06-30"
    for sent, reason in (
        ("garbage", "invalid_api_version"),
        ("2026-13-40", "invalid_api_version"),
        ("2025-04-11", "unsupported_api_version"),
    ):
        response = await client.get(f"{API}/health", headers={"Airflow-API-Version": sent})
        assert response.status_code == 400, sent
        assert response.json()["detail"]["reason"] == reason
        assert response.headers["Taskgate-Reason"] == reason
        assert response.headers["airflow-api-version"] == "2026-06-30"
    # The JWKS document is not part of the versioned Execution API.
    assert "airflow-api-version" not in (await client.get("/.well-known/jwks.json")).headers


async def test_task_instance_reads_of_own_dag(client, factory, running):
    ti, auth = running
    other = await factory.queued_ti(dag_id="etl", task_id="load", run_id="r2")
    count = await client.get(f"{API}/task-instances/count", params={"dag_id": "etl"}, headers=auth)
    assert count.json() == 2
    running_only = await client.get(
        f"{API}/task-instances/count",
        params={"dag_id": "etl", "states": ["running"], "task_ids": ["extract", "load"]},
        headers=auth,
    )
    assert running_only.json() == 1
    states = await client.get(f"{API}/task-instances/states", params={"dag_id": "etl"}, headers=auth)
    assert states.json() == {"task_states": {"r1": {"extract": "running"}, "r2": {"load": "queued"}}}
    previous = await client.get(f"{API}/task-instances/previous/etl/load", headers=auth)
    assert previous.status_code == 200
    assert previous.json()["run_id"] == other.run_id and previous.json()["state"] == "queued"
    none = await client.get(f"{API}/task-instances/previous/etl/nothing", headers=auth)
    assert none.status_code == 200 and none.json() is None
    crumbs = await client.get(
        f"{API}/task-instances/breadcrumbs", params={"dag_id": "etl", "run_id": "r1"}, headers=auth
    )
    assert crumbs.json() == {"breadcrumbs": []}
    checked = await client.get(f"{API}/task-instances/{ti.id}/validate-inlets-and-outlets", headers=auth)
    assert checked.json() == {"inactive_assets": []}


@pytest.mark.parametrize(
    "path,params",
    [
        ("/task-instances/count", {"dag_id": "secret"}),
        ("/task-instances/states", {"dag_id": "secret"}),
        ("/task-instances/previous/secret/t", {}),
        ("/task-instances/breadcrumbs", {"dag_id": "secret", "run_id": "r"}),
        ("/dag-runs/count", {"dag_id": "secret"}),
        ("/dag-runs/previous", {"dag_id": "secret", "logical_date": "2030-01-01T00:00:00Z"}),
        ("/dag-runs/secret/r", {}),
        ("/dag-runs/secret/r/state", {}),
    ],
)
async def test_reads_of_another_dag_are_denied(client, factory, running, path, params):
    await factory.queued_ti(dag_id="secret", task_id="t", run_id="r")
    _ti, auth = running
    response = await client.get(f"{API}{path}", params=params, headers=auth)
    assert response.status_code == 403
    assert response.json()["detail"]["reason"] == "access_denied"
    assert response.headers["Taskgate-Reason"] == "other_dag"


async def test_dag_run_reads(client, running):
    _ti, auth = running
    detail = await client.get(f"{API}/dag-runs/etl/r1", headers=auth)
    assert detail.status_code == 200
    assert detail.json()["run_id"] == "r1" and detail.json()["run_type"] == "manual"
    state = await client.get(f"{API}/dag-runs/etl/r1/state", headers=auth)
    assert state.json() == {"state": "running"}
    count = await client.get(
        f"{API}/dag-runs/count", params={"dag_id": "etl", "states": ["running"]}, headers=auth
    )
    assert count.json() == 1
    previous = await client.get(
        f"{API}/dag-runs/previous",
        params={"dag_id": "etl", "logical_date": "2000-01-01T00:00:00Z"},
        headers=auth,
    )
    assert previous.status_code == 200 and previous.json() is None
    missing = await client.get(f"{API}/dag-runs/etl/nope", headers=auth)
    assert missing.status_code == 404
    naive = await client.get(
        f"{API}/dag-runs/previous", params={"dag_id": "etl", "logical_date": "2000-01-01"}, headers=auth
    )
    assert naive.status_code == 422


async def test_reschedule_is_counted_and_dated(client, factory, runtime, running):
    ti, auth = running
    start = await client.get(f"{API}/task-reschedules/{ti.id}/start_date", headers=auth)
    assert start.status_code == 200 and start.json() is None
    reschedule = {
        "state": "up_for_reschedule",
        "reschedule_date": "2030-01-01T00:00:00Z",
        "end_date": "2026-01-01T00:01:00Z",
    }
    assert (await client.patch(f"{API}/task-instances/{ti.id}/state", json=reschedule, headers=auth)).status_code == 204
    start = await client.get(
        f"{API}/task-reschedules/{ti.id}/start_date", params={"try_number": 1}, headers=auth
    )
    assert start.json() is not None
    queued = await runtime.lifecycle.queue(ti.id)
    assert queued.ti.try_number == 1  # a rescheduled try resumes
    run = await client.patch(
        f"{API}/task-instances/{ti.id}/run",
        json={"state": "running", "hostname": "h", "unixname": "u", "pid": 1,
              "start_date": "2026-01-01T00:02:00Z"},
        headers=bearer(queued.workload_token),
    )
    assert run.status_code == 200 and run.json()["task_reschedule_count"] == 1


async def test_task_state_store_is_bound_to_its_ti(client, factory, running):
    ti, auth = running
    url = f"{API}/store/ti/{ti.id}/progress/step"
    assert (await client.get(url, headers=auth)).status_code == 404
    assert (await client.put(url, json={"value": {"done": 3}}, headers=auth)).status_code == 204
    assert (await client.get(url, headers=auth)).json() == {"value": {"done": 3}}
    expired = {"value": 1, "expires_at": "2000-01-01T00:00:00Z"}
    assert (await client.put(f"{API}/store/ti/{ti.id}/old", json=expired, headers=auth)).status_code == 204
    assert (await client.get(f"{API}/store/ti/{ti.id}/old", headers=auth)).status_code == 404
    assert (await client.delete(url, headers=auth)).status_code == 204
    assert (await client.get(url, headers=auth)).status_code == 404
    assert (await client.put(url, json={"value": 1}, headers=auth)).status_code == 204
    assert (await client.delete(f"{API}/store/ti/{ti.id}", headers=auth)).status_code == 204
    assert (await client.get(url, headers=auth)).status_code == 404
    bad = await client.put(url, json={"value": 1, "extra": 2}, headers=auth)
    assert bad.status_code == 422
    other = await factory.queued_ti(dag_id="etl", task_id="other", run_id="r3")
    foreign = await client.get(f"{API}/store/ti/{other.id}/progress", headers=auth)
    assert foreign.status_code == 403
    assert foreign.json() == {"detail": "Token subject does not match task instance ID"}


async def test_mapped_xcoms_by_offset_and_prior_dates(client, factory, runtime):
    ti, token = await factory.running_ti(client, dag_id="m", task_id="double", run_id="r1", map_index=2)
    auth = bearer(token)
    async with runtime.sessionmaker() as session:
        for index in (0, 1, 2):
            pusher = access.Requester(ti.id, "m", "r1", "double", index, None)
            ref = xcoms.XComRef("m", "r1", "double", "return_value")
            await xcoms.push(session, pusher, ref, index * 10, map_index=index)
    base = f"{API}/xcoms/m/r1/double/return_value"
    assert (await client.head(base, headers=auth)).headers["content-range"] == "map_indexes 3"
    assert (await client.get(base, params={"offset": -1}, headers=auth)).json()["value"] == 20
    assert (await client.get(base, params={"map_index": 1}, headers=auth)).json()["value"] == 10
    assert (await client.get(f"{base}/item/0", headers=auth)).json() == 0
    missing = await client.get(base, params={"offset": 7}, headers=auth)
    assert missing.status_code == 404 and "offset=7" in missing.json()["detail"]["message"]
    assert (await client.get(f"{base}/slice", params={"step": -1}, headers=auth)).json() == [20, 10, 0]
    # A later run sees the earlier run's value with include_prior_dates only.
    later, later_token = await factory.running_ti(client, dag_id="m", task_id="double", run_id="r2", map_index=2)
    later_url = f"{API}/xcoms/m/r2/double/return_value"
    assert (await client.get(later_url, params={"map_index": 0}, headers=bearer(later_token))).status_code == 404
    prior = await client.get(
        later_url, params={"map_index": 0, "include_prior_dates": True}, headers=bearer(later_token)
    )
    assert prior.json()["value"] == 0
    own = f"{API}/xcoms/m/r1/double/return_value"
    too_long = await client.post(own, params={"map_index": 2, "mapped_length": 5000}, json=[1], headers=auth)
    assert too_long.status_code == 400
    assert too_long.json()["detail"]["reason"] == "unmappable_return_value_length"
    ok = await client.post(
        own, params={"map_index": 2, "mapped_length": 3, "dag_result": True}, json=[1, 2, 3], headers=auth
    )
    assert ok.status_code == 201
