"""Variables, connections and XComs through the API, under the team access policy."""

from taskgate.services import connections, variables
from tests.support.api import bearer


async def seed(runtime):
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "global_var", "g")
        await variables.put(session, runtime.secrets, "a_var", "a", team="team-a")
        await variables.put(session, runtime.secrets, "b_var", "b", team="team-b")
        await connections.put(session, runtime.secrets, "global_db", connections.parse_uri("postgres://u:p%40ss@db:5432/app?sslmode=require"))
        await connections.put(session, runtime.secrets, "b_db", connections.parse_uri("mysql://x@y/z"), team="team-b")


async def test_team_reads_global_and_own_but_not_other_team(client, factory, runtime):
    await seed(runtime)
    _ti, token = await factory.running_ti(client, dag_id="dag_a", team="team-a")
    auth = bearer(token)
    assert (await client.get("/execution/variables/global_var", headers=auth)).json() == {"key": "global_var", "value": "g"}
    assert (await client.get("/execution/variables/a_var", headers=auth)).json()["value"] == "a"
    denied = await client.get("/execution/variables/b_var", headers=auth)
    assert denied.status_code == 403 and denied.json()["detail"]["reason"] == "access_denied"
    assert denied.headers["Taskgate-Reason"] == "other_team"
    conn_denied = await client.get("/execution/connections/b_db", headers=auth)
    assert (conn_denied.status_code, conn_denied.headers["Taskgate-Reason"]) == (403, "other_team")
    conn = await client.get("/execution/connections/global_db", headers=auth)
    assert conn.status_code == 200
    assert conn.json() == {
        "conn_id": "global_db", "conn_type": "postgres", "host": "db", "schema": "app",
        "login": "u", "password": "p@ss", "port": 5432, "extra": '{"sslmode": "require"}',
    }
    missing = await client.get("/execution/variables/nope", headers=auth)
    assert (missing.status_code, missing.headers["Taskgate-Reason"]) == (404, "not_found")
    assert missing.json()["detail"] == {"reason": "not_found", "message": "Variable with key 'nope' not found"}


async def test_team_writes_only_its_own_entries(client, factory, runtime):
    await seed(runtime)
    _ti, token = await factory.running_ti(client, dag_id="dag_a", team="team-a")
    auth = bearer(token)
    put = await client.put("/execution/variables/new_var", json={"val": "v", "description": "d"}, headers=auth)
    assert put.status_code == 201
    async with runtime.sessionmaker() as session:
        assert (await variables.get(session, runtime.secrets, "new_var")).team == "team-a"
    for key in ("global_var", "b_var"):
        refused = await client.put(f"/execution/variables/{key}", json={"value": "x"}, headers=auth)
        assert (refused.status_code, refused.headers["Taskgate-Reason"]) == (403, "other_team")
        not_deleted = await client.delete(f"/execution/variables/{key}", headers=auth)
        assert (not_deleted.status_code, not_deleted.headers["Taskgate-Reason"]) == (403, "other_team")
    async with runtime.sessionmaker() as session:
        assert (await variables.get(session, runtime.secrets, "global_var")).value == "g"
    assert (await client.delete("/execution/variables/new_var", headers=auth)).status_code == 204
    assert (await client.get("/execution/variables/new_var", headers=auth)).status_code == 404


async def test_variable_keys_may_contain_slashes(client, factory):
    _ti, token = await factory.running_ti(client)
    auth = bearer(token)
    assert (await client.put("/execution/variables/a/b/c", json={"val": "deep"}, headers=auth)).status_code == 201
    assert (await client.get("/execution/variables/a/b/c", headers=auth)).json() == {"key": "a/b/c", "value": "deep"}


async def test_xcom_push_pull_and_ownership(client, factory):
    _ti, token = await factory.running_ti(client, dag_id="etl", task_id="extract", run_id="r1")
    auth = bearer(token)
    base = "/execution/xcoms/etl/r1/extract"
    assert (await client.post(f"{base}/return_value", json={"rows": [1, 2]}, headers=auth)).status_code == 201
    got = await client.get(f"{base}/return_value", headers=auth)
    assert got.json() == {"key": "return_value", "value": {"rows": [1, 2]}}
    assert (await client.post(f"{base}/return_value", json=[3], headers=auth)).status_code == 201
    assert (await client.get(f"{base}/return_value", headers=auth)).json()["value"] == [3]
    head = await client.head(f"{base}/return_value", headers=auth)
    assert head.headers["Content-Range"] == "map_indexes 1"
    # Another TI's XCom: not writable, but readable within the DAG.
    other = await client.post("/execution/xcoms/etl/r1/load/return_value", json=1, headers=auth)
    assert (other.status_code, other.headers["Taskgate-Reason"]) == (403, "other_task_instance")
    other_dag = await client.get("/execution/xcoms/other/r1/extract/return_value", headers=auth)
    assert (other_dag.status_code, other_dag.headers["Taskgate-Reason"]) == (403, "other_dag")
    missing = await client.get(f"{base}/nothing", headers=auth)
    assert missing.status_code == 404
    deleted = await client.delete(f"{base}/return_value", headers=auth)
    assert deleted.status_code == 200
    assert (await client.get(f"{base}/return_value", headers=auth)).status_code == 404


async def test_downstream_task_pulls_upstream_xcom(client, factory, runtime):
    from taskgate.services import control

    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "pipe")
        created = await control.create_run(session, "pipe", "r", ["up", "down"])
        up, down = created.task_instances
        q_up = await runtime.lifecycle.queue(up.id)
        q_down = await runtime.lifecycle.queue(down.id)
    from tests.support.api import RUN_BODY

    up_run = await client.patch(f"/execution/task-instances/{up.id}/run", json=RUN_BODY, headers=bearer(q_up.workload_token))
    await client.post("/execution/xcoms/pipe/r/up/return_value", json=42, headers=bearer(up_run.headers["Refreshed-API-Token"]))
    down_run = await client.patch(
        f"/execution/task-instances/{down.id}/run", json={**RUN_BODY, "pid": 7}, headers=bearer(q_down.workload_token)
    )
    pulled = await client.get("/execution/xcoms/pipe/r/up/return_value", headers=bearer(down_run.headers["Refreshed-API-Token"]))
    assert pulled.json() == {"key": "return_value", "value": 42}


async def test_mapped_xcom_sequence_item_and_slice(client, factory, runtime):
    from taskgate.db.models import XCom

    _ti, token = await factory.running_ti(client, dag_id="m", task_id="mapped", run_id="r")
    async with runtime.sessionmaker() as session:
        session.add_all(
            XCom(dag_id="m", run_id="r", task_id="mapped", map_index=i, key="return_value", value=str(i * 10))
            for i in range(4)
        )
        await session.commit()
    auth = bearer(token)
    base = "/execution/xcoms/m/r/mapped/return_value"
    assert (await client.head(base, headers=auth)).headers["Content-Range"] == "map_indexes 4"
    assert (await client.get(f"{base}/item/1", headers=auth)).json() == 10
    assert (await client.get(f"{base}/item/-1", headers=auth)).json() == 30
    assert (await client.get(f"{base}/item/9", headers=auth)).status_code == 404
    assert (await client.get(f"{base}/slice", params={"start": 1, "stop": 3}, headers=auth)).json() == [10, 20]
    assert (await client.get(f"{base}/slice", params={"step": -2}, headers=auth)).json() == [30, 10]
    assert (await client.get(f"{base}/slice", params={"step": 0}, headers=auth)).status_code == 422
    assert (await client.get(base, params={"map_index": 2}, headers=auth)).json()["value"] == 20
    assert (await client.head(base, params={"map_index": 2}, headers=auth)).status_code == 400


async def test_variable_keys_are_filtered_by_team_and_prefix(client, factory, runtime):
    await seed(runtime)
    _ti, token = await factory.running_ti(client, dag_id="dag_a", team="team-a")
    auth = bearer(token)
    listing = await client.get("/execution/variables/keys", headers=auth)
    assert listing.json() == {"keys": ["a_var", "global_var"], "total_entries": 2}
    page = await client.get("/execution/variables/keys", params={"limit": 1, "offset": 1}, headers=auth)
    assert page.json() == {"keys": ["global_var"], "total_entries": 2}
    prefixed = await client.get("/execution/variables/keys", params={"prefix": "glob"}, headers=auth)
    assert prefixed.json()["keys"] == ["global_var"]
    literal = await client.get("/execution/variables/keys", params={"prefix": "a%"}, headers=auth)
    assert literal.json() == {"keys": [], "total_entries": 0}
