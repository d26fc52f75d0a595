"""Variables and connections over the control API: admins write and see secret values,
readers see that they exist, team-scoped operators see their teams' entries only; and a
task reads what the control API wrote."""

from __future__ import annotations

from taskgate.services.operators import Role
from tests.support.api import bearer

CONTROL = "/control/v1"


async def test_variables(client, operator_key) -> None:
    admin, reader = await operator_key(Role.ADMIN), await operator_key(Role.READER)
    put = await client.put(f"{CONTROL}/variables/greeting", headers=admin,
                           json={"value": "hello", "description": "a greeting"})
    assert put.status_code == 200, put.text
    assert put.json() == {"key": "greeting", "value": "hello", "description": "a greeting", "team": None}
    assert (await client.get(f"{CONTROL}/variables/greeting", headers=admin)).json()["value"] == "hello"
    shown = (await client.get(f"{CONTROL}/variables/greeting", headers=reader)).json()
    assert shown == {"key": "greeting", "description": "a greeting", "team": None}  # no value
    assert [v["key"] for v in (await client.get(f"{CONTROL}/variables", headers=reader)).json()] == ["greeting"]
    refused = await client.put(f"{CONTROL}/variables/greeting", headers=reader, json={"value": "x"})
    assert refused.status_code == 403
    assert (await client.delete(f"{CONTROL}/variables/greeting", headers=admin)).status_code == 204
    assert (await client.get(f"{CONTROL}/variables/greeting", headers=admin)).status_code == 404
    assert (await client.delete(f"{CONTROL}/variables/greeting", headers=admin)).status_code == 404


async def test_connections(client, operator_key) -> None:
    admin, reader = await operator_key(Role.ADMIN), await operator_key(Role.READER)
    put = await client.put(f"{CONTROL}/connections/wh", headers=admin,
                           json={"uri": "postgres://u:pw@wh:5432/dw?sslmode=require"})
    assert put.status_code == 200, put.text
    assert (put.json()["password"], put.json()["host"], put.json()["port"]) == ("pw", "wh", 5432)
    hidden = (await client.get(f"{CONTROL}/connections/wh", headers=reader)).json()
    assert (hidden["password"], hidden["extra"], hidden["host"]) == ("***", "***", "wh")
    by_fields = await client.put(f"{CONTROL}/connections/api", headers=admin,
                                 json={"conn_type": "http", "host": "example.org", "schema": "https"})
    assert by_fields.status_code == 200 and by_fields.json()["schema"] == "https"
    for bad in ({}, {"uri": "x://h", "conn_type": "http"}, {"conn_type": "http", "port": 70000}):
        answer = await client.put(f"{CONTROL}/connections/bad", headers=admin, json=bad)
        assert answer.status_code == 422, (bad, answer.text)
    assert [c["conn_id"] for c in (await client.get(f"{CONTROL}/connections", headers=reader)).json()] == ["api", "wh"]
    assert (await client.delete(f"{CONTROL}/connections/wh", headers=admin)).status_code == 204


async def test_teams_see_their_own_entries_only(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    for key, team in (("etl_secret", "etl"), ("ml_secret", "ml"), ("shared", None)):
        answer = await client.put(f"{CONTROL}/variables/{key}", headers=admin,
                                  json={"value": "v", "team": team})
        assert answer.status_code == 200
    etl_admin = await operator_key(Role.ADMIN, "etl")
    listed = await client.get(f"{CONTROL}/variables", headers=etl_admin)
    assert [v["key"] for v in listed.json()] == ["etl_secret"]
    # Another team's entry is answered as missing, whatever the verb.
    for method, body in (("GET", None), ("PUT", {"value": "mine", "team": "etl"}), ("DELETE", None)):
        answer = await client.request(method, f"{CONTROL}/variables/ml_secret", headers=etl_admin, json=body)
        assert answer.status_code == 404, (method, answer.text)
    moved = await client.put(f"{CONTROL}/variables/new", headers=etl_admin, json={"value": "v", "team": "ml"})
    assert (moved.status_code, moved.json()["detail"]["reason"]) == (403, "team_required")
    assert (await client.get(f"{CONTROL}/variables/ml_secret", headers=admin)).json()["value"] == "v"


async def test_a_task_reads_what_the_control_api_wrote(client, operator_key, factory) -> None:
    admin = await operator_key(Role.ADMIN)
    await client.put(f"{CONTROL}/variables/greeting", headers=admin, json={"value": "hello"})
    ti = await factory.running_row()
    answer = await client.get("/execution/variables/greeting",
                              headers=bearer(factory.token(ti.id)))
    assert (answer.status_code, answer.json()["value"]) == (200, "hello")
