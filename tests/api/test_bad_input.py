"""Hostile and odd input: always a clear 4xx, never a 500, nothing half-written."""

import pytest

from tests.support.api import RUN_BODY, bearer


def url(ti_id, suffix):
    return f"/execution/task-instances/{ti_id}/{suffix}"


async def test_oversized_body_is_413(client, factory, runtime):
    ti, token = await factory.running_ti(client)
    big = "x" * (runtime.settings.max_request_body_bytes + 1)
    response = await client.put(url(ti.id, "rtif"), json={"f": big}, headers=bearer(token))
    assert response.status_code == 413

    async def chunks():  # no Content-Length: counted while streaming
        for _ in range(runtime.settings.max_request_body_bytes // 65536 + 2):
            yield b"a" * 65536

    streamed = await client.put(url(ti.id, "rtif"), content=chunks(),
                                headers={**bearer(token), "content-type": "application/json"})
    assert streamed.status_code == 413


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00-14:00", "0001-01-01T00:00:00+14:00"])
async def test_datetimes_outside_utc_range_are_422(client, factory, when):
    ti, token = await factory.running_ti(client)
    response = await client.patch(url(ti.id, "state"), json={"state": "success", "end_date": when},
                                  headers=bearer(token))
    assert response.status_code == 422


async def test_skip_downstream_bounds(client, factory):
    ti, token = await factory.running_ti(client)
    auth = bearer(token)
    huge = await client.patch(url(ti.id, "skip-downstream"), json={"tasks": [["t", 2**70]]}, headers=auth)
    assert huge.status_code == 422
    many = await client.patch(url(ti.id, "skip-downstream"),
                              json={"tasks": [["t", i] for i in range(1001)]}, headers=auth)
    assert many.status_code == 422
    ok = await client.patch(url(ti.id, "skip-downstream"),
                            json={"tasks": [["t", i] for i in range(1000)]}, headers=auth)
    assert ok.status_code == 204


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("PUT", "/execution/variables/nul%00key", {"val": "x"}),
        ("PUT", "/execution/variables/tab%09key", {"val": "x"}),
        ("GET", "/execution/connections/c%00", None),
    ],
)
async def test_unstorable_text_is_422_not_500(client, factory, method, path, body):
    _ti, token = await factory.running_ti(client)
    response = await client.request(method, path, json=body, headers=bearer(token))
    assert response.status_code in (404, 422), response.text


async def test_unpaired_surrogate_is_422(client, factory):
    _ti, token = await factory.running_ti(client)
    response = await client.put("/execution/variables/k", content=b'{"val": "\\ud800"}',
                                headers={**bearer(token), "content-type": "application/json"})
    assert response.status_code == 422


async def test_any_text_value_round_trips_encrypted(client, factory):
    _ti, token = await factory.running_ti(client)
    value = "nul\u0000 and ünïcødé ✓"
    assert (await client.put("/execution/variables/k", json={"val": value}, headers=bearer(token))).status_code == 201
    assert (await client.get("/execution/variables/k", headers=bearer(token))).json()["value"] == value


async def test_nan_and_deep_nesting_in_json_values(client, factory):
    ti, token = await factory.running_ti(client)
    auth = {**bearer(token), "content-type": "application/json"}
    for body in (b'{"a": NaN}', b'{"a": [1, {"b": Infinity}]}'):
        assert (await client.put(url(ti.id, "rtif"), content=body, headers=auth)).status_code == 422
    deep = "[" * 300 + "]" * 300
    xcom = f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/deep"
    pushed = await client.post(xcom, content=deep.encode(), headers=auth)
    if pushed.status_code == 201:
        assert (await client.get(xcom, headers=auth)).status_code == 200
    else:
        assert pushed.status_code == 422


async def test_xcom_push_without_body_stores_null(client, factory):
    ti, token = await factory.running_ti(client)
    xcom = f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/none"
    assert (await client.post(xcom, headers=bearer(token))).status_code == 201
    assert (await client.get(xcom, headers=bearer(token))).json() == {"key": "none", "value": None}


async def test_concurrent_writes_of_one_row_all_succeed(client, factory):
    import asyncio

    ti, token = await factory.running_ti(client)
    auth = bearer(token)
    xcom = f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/k"
    calls = [client.post(xcom, json=i, headers=auth) for i in range(6)]
    calls += [client.put(url(ti.id, "rtif"), json={"i": i}, headers=auth) for i in range(6)]
    calls += [client.put("/execution/variables/shared", json={"val": str(i)}, headers=auth) for i in range(6)]
    statuses = [r.status_code for r in await asyncio.gather(*calls)]
    assert set(statuses) == {201}, statuses
    assert (await client.get(xcom, headers=auth)).json()["value"] in range(6)


async def test_a_new_try_does_not_resume_an_old_deferral(client, factory, runtime):

    ti, token = await factory.running_ti(client, max_tries=2)
    defer = {"state": "deferred", "classpath": "x.T", "next_method": "execute_complete",
             "next_kwargs": {"a": 1}}
    assert (await client.patch(url(ti.id, "state"), json=defer, headers=bearer(token))).status_code == 204
    resumed = await runtime.lifecycle.queue(ti.id)
    run = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(resumed.workload_token))
    assert run.json()["next_method"] == "execute_complete"  # resuming the same try
    token = run.headers["Refreshed-API-Token"]
    retry = {"state": "up_for_retry", "end_date": "2026-01-01T00:00:00Z"}
    assert (await client.patch(url(ti.id, "state"), json=retry, headers=bearer(token))).status_code == 204
    new_try = await runtime.lifecycle.queue(ti.id)
    run = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(new_try.workload_token))
    assert run.json()["next_method"] is None and run.json()["next_kwargs"] is None


async def test_awaiting_input_is_a_state_report(client, factory):
    ti, token = await factory.running_ti(client)
    body = {"state": "awaiting_input", "next_method": "resume", "timeout": 60}
    assert (await client.patch(url(ti.id, "state"), json=body, headers=bearer(token))).status_code == 204
