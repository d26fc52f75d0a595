"""The control API's resources end to end, in-process: what an orchestrator does, and
that the Execution API sees it (a workload token from /queue starts the TI; revoked
tokens are refused)."""

from __future__ import annotations

import uuid

from sqlalchemy import event

from taskgate.services.operators import Role
from tests.support.api import BEAT_BODY, RUN_BODY, bearer

CONTROL = "/control/v1"


async def test_an_orchestrators_loop(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    dag = await client.put(f"{CONTROL}/dags/etl", json={"team": "data"}, headers=admin)
    assert dag.json() == {"dag_id": "etl", "team": "data", "token_binding": None}
    bound = await client.put(f"{CONTROL}/dags/etl", json={"team": "data", "token_binding": "dpop"},
                             headers=admin)
    assert bound.json()["token_binding"] == "dpop"
    unknown = await client.put(f"{CONTROL}/dags/etl", json={"team": "data", "token_binding": "mtls"},
                               headers=admin)
    assert unknown.status_code == 422
    unbound = await client.put(f"{CONTROL}/dags/etl", json={"team": "data", "token_binding": "bearer"},
                               headers=admin)
    assert unbound.json()["token_binding"] == "bearer"
    assert (await client.put(f"{CONTROL}/dags/etl", json={"team": "data"}, headers=admin)).status_code == 200
    moved = await client.put(f"{CONTROL}/dags/etl", json={"team": "other"}, headers=admin)
    assert (moved.status_code, moved.json()["detail"]["reason"]) == (409, "team_mismatch")

    run = await client.post(f"{CONTROL}/dags/etl/runs", headers=admin,
                            json={"run_id": "r1", "tasks": ["extract", "load"], "mapped": {"load": 2}})
    assert run.status_code == 201, run.text
    tis = run.json()["task_instances"]
    assert [(t["task_id"], t["map_index"], t["state"]) for t in tis] == [
        ("extract", -1, "scheduled"), ("load", 0, "scheduled"), ("load", 1, "scheduled")]

    page = await client.get(f"{CONTROL}/task-instances?dag_id=etl&limit=2&offset=1", headers=admin)
    assert [t["map_index"] for t in page.json()] == [0, 1]

    extract = tis[0]["id"]
    queued = await client.post(f"{CONTROL}/task-instances/{extract}/queue", headers=admin)
    assert queued.status_code == 200, queued.text
    assert queued.json()["ti"]["state"] == "queued"
    started = await client.patch(f"/execution/task-instances/{extract}/run", json=RUN_BODY,
                                 headers=bearer(queued.json()["token"]))
    assert started.status_code == 200, started.text
    execution = bearer(started.headers["Refreshed-API-Token"])

    shown = (await client.get(f"{CONTROL}/task-instances/{extract}", headers=admin)).json()
    assert (shown["state"], shown["try_number"], shown["workload_tokens_spent"]) == ("running", 1, 1)
    assert shown["hostname"] == RUN_BODY["hostname"]

    again = await client.post(f"{CONTROL}/task-instances/{extract}/queue", headers=admin)
    assert again.status_code == 409
    assert "running" in again.json()["detail"]["message"]

    revoked = await client.post(f"{CONTROL}/task-instances/{extract}/revoke-tokens", headers=admin)
    assert revoked.status_code == 200
    beat = await client.put(f"/execution/task-instances/{extract}/heartbeat", json=BEAT_BODY,
                            headers=execution)
    assert beat.status_code == 403
    shown = (await client.get(f"{CONTROL}/task-instances/{extract}", headers=admin)).json()
    assert shown["tokens_not_before"] == revoked.json()["tokens_not_before"]


async def test_the_airflow_workload_format(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    await client.put(f"{CONTROL}/dags/etl", json={}, headers=admin)
    run = await client.post(f"{CONTROL}/dags/etl/runs", json={"run_id": "r", "tasks": ["t"]}, headers=admin)
    ti = run.json()["task_instances"][0]["id"]
    missing = await client.post(f"{CONTROL}/task-instances/{ti}/queue", json={"format": "airflow"},
                                headers=admin)
    assert missing.status_code == 422
    workload = await client.post(
        f"{CONTROL}/task-instances/{ti}/queue", headers=admin,
        json={"format": "airflow", "dag_rel_path": "etl.py", "bundle_name": "dags-folder"})
    assert workload.status_code == 200, workload.text
    body = workload.json()
    assert body["type"] == "ExecuteTask" and body["ti"]["id"] == ti and body["token"]


async def test_bad_input_is_a_4xx_with_a_reason(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    unknown_dag = await client.post(f"{CONTROL}/dags/nope/runs", json={"run_id": "r", "tasks": ["t"]},
                                    headers=admin)
    assert (unknown_dag.status_code, unknown_dag.json()["detail"]["reason"]) == (404, "not_found")
    for path, method, body in (
        (f"{CONTROL}/task-instances/not-a-uuid", "GET", None),
        (f"{CONTROL}/task-instances?limit=0", "GET", None),
        (f"{CONTROL}/dags/etl", "PUT", {"team": 5}),
        (f"{CONTROL}/dags/etl/runs", "POST", {"run_id": "", "tasks": ["t"]}),
        (f"{CONTROL}/dags/etl/runs", "POST", {"run_id": "r", "tasks": []}),
    ):
        answer = await client.request(method, path, json=body, headers=admin)
        assert answer.status_code == 422, (path, answer.text)
    missing = await client.get(f"{CONTROL}/task-instances/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404


async def test_xcoms_a_task_pushed(client, operator_key, factory) -> None:
    admin = await operator_key(Role.ADMIN)
    await client.put(f"{CONTROL}/dags/etl", json={"team": "data"}, headers=admin)
    run = await client.post(f"{CONTROL}/dags/etl/runs", json={"run_id": "r", "tasks": ["t"]}, headers=admin)
    ti = run.json()["task_instances"][0]["id"]
    queued = (await client.post(f"{CONTROL}/task-instances/{ti}/queue", headers=admin)).json()
    started = await client.patch(f"/execution/task-instances/{ti}/run", json=RUN_BODY,
                                 headers=bearer(queued["token"]))
    token = bearer(started.headers["Refreshed-API-Token"])
    pushed = await client.post("/execution/xcoms/etl/r/t/return_value", json={"rows": 3}, headers=token)
    assert pushed.status_code == 201, pushed.text

    listed = await client.get(f"{CONTROL}/xcoms?dag_id=etl", headers=admin)
    assert listed.json() == [{"dag_id": "etl", "run_id": "r", "task_id": "t", "map_index": -1,
                              "key": "return_value", "value": {"rows": 3}}]
    one = await client.get(f"{CONTROL}/xcoms/etl/r/t/return_value", headers=admin)
    assert one.json() == {"rows": 3}
    other_team = await operator_key(Role.READER, "ml")
    assert (await client.get(f"{CONTROL}/xcoms", headers=other_team)).json() == []
    refused = await client.get(f"{CONTROL}/xcoms/etl/r/t/return_value", headers=other_team)
    assert refused.status_code == 403
    missing = await client.get(f"{CONTROL}/xcoms/etl/r/t/nope", headers=admin)
    assert missing.status_code == 404


async def test_a_database_fault_is_503_on_the_control_api_too(client, operator_key, runtime) -> None:
    admin = await operator_key(Role.ADMIN)

    def fail(conn, cursor, statement, parameters, context, executemany) -> None:
        raise conn.dialect.loaded_dbapi.OperationalError("injected fault")

    event.listen(runtime.engine.sync_engine, "before_cursor_execute", fail)
    try:
        answer = await client.get(f"{CONTROL}/dags", headers=admin)
    finally:
        event.remove(runtime.engine.sync_engine, "before_cursor_execute", fail)
    assert answer.status_code == 503, answer.text
    assert (answer.json()["detail"]["reason"], answer.headers["Retry-After"]) == ("database_unavailable", "1")


async def test_task_instances_are_filtered_by_team_within_what_the_operator_sees(
    client, operator_key
) -> None:
    admin = await operator_key(Role.ADMIN)
    for dag, team in (("blue-etl", "blue"), ("red-etl", "red"), ("shared", None)):
        assert (await client.put(f"{CONTROL}/dags/{dag}", json={"team": team},
                                 headers=admin)).status_code == 200
        run = await client.post(f"{CONTROL}/dags/{dag}/runs", headers=admin,
                                json={"run_id": "r1", "tasks": ["t"]})
        assert run.status_code == 201, run.text

    async def dags(headers: dict[str, str], query: str = "") -> list[str]:
        answer = await client.get(f"{CONTROL}/task-instances{query}", headers=headers)
        assert answer.status_code == 200, answer.text
        return [ti["dag_id"] for ti in answer.json()]

    assert await dags(admin) == ["blue-etl", "red-etl", "shared"]
    assert await dags(admin, "?team=red") == ["red-etl"]
    assert await dags(admin, "?team=green") == []
    blue = await operator_key(Role.READER, "blue")
    assert await dags(blue) == ["blue-etl"]
    assert await dags(blue, "?team=red") == []  # a filter never widens what one sees
