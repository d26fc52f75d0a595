"""The control API's security, request by request: keys, roles, teams, and that the two
APIs never take each other's credentials."""

from __future__ import annotations

import pytest

from taskgate.services import operators
from taskgate.services.operators import Role
from tests.support.api import BEAT_BODY, bearer

DAGS = "/control/v1/dags"


async def test_no_key_is_401_with_a_challenge(client) -> None:
    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Basic abc"}):
        answer = await client.get(DAGS, headers=headers)
        assert answer.status_code == 401
        assert answer.json()["detail"]["reason"] == "missing_key"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
        assert answer.headers["Taskgate-Reason"] == "missing_key"


async def test_an_unknown_or_revoked_key_is_401(client, runtime, operator_key) -> None:
    headers = await operator_key(Role.ADMIN)
    assert (await client.get(DAGS, headers=headers)).status_code == 200
    forged = {"Authorization": headers["Authorization"][:-3] + "abc"}
    answer = await client.get(DAGS, headers=forged)
    assert (answer.status_code, answer.json()["detail"]["reason"]) == (401, "invalid_key")
    assert 'error="invalid_token"' in answer.headers["WWW-Authenticate"]
    async with runtime.sessionmaker() as session:
        await operators.revoke_operator(session, "op1")
    answer = await client.get(DAGS, headers=headers)  # the very next request
    assert (answer.status_code, answer.json()["detail"]["reason"]) == (401, "invalid_key")


@pytest.mark.parametrize(
    ("role", "method", "path", "needed"),
    [
        (Role.READER, "PUT", f"{DAGS}/d", "admin"),
        (Role.OPERATOR, "PUT", f"{DAGS}/d", "admin"),
        (Role.READER, "POST", f"{DAGS}/d/runs", "operator"),
        (Role.READER, "POST", "/control/v1/task-instances/0196e5f2-0000-7000-8000-000000000000/queue", "operator"),
        (Role.READER, "POST", "/control/v1/task-instances/0196e5f2-0000-7000-8000-000000000000/revoke-tokens", "operator"),
    ],
)
async def test_a_role_too_low_is_403_naming_what_is_missing(
    client, operator_key, role, method, path, needed
) -> None:
    headers = await operator_key(role)
    answer = await client.request(method, path, headers=headers, json={"run_id": "r", "tasks": ["t"]})
    assert answer.status_code == 403
    detail = answer.json()["detail"]
    assert detail["reason"] == "role_required"
    assert answer.headers["Taskgate-Reason"] == "role_required"
    assert f"needs role {needed}" in detail["message"] and f"has {role}" in detail["message"]


async def test_an_operator_of_other_teams_is_403_and_sees_nothing(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    for dag, team in (("etl_dag", "etl"), ("ml_dag", "ml")):
        assert (await client.put(f"{DAGS}/{dag}", json={"team": team}, headers=admin)).status_code == 200
        run = await client.post(f"{DAGS}/{dag}/runs", json={"run_id": "r1", "tasks": ["t"]}, headers=admin)
        assert run.status_code == 201
    etl = await operator_key(Role.OPERATOR, "etl")
    assert [d["dag_id"] for d in (await client.get(DAGS, headers=etl)).json()] == ["etl_dag"]
    listed = (await client.get("/control/v1/task-instances", headers=etl)).json()
    assert {ti["dag_id"] for ti in listed} == {"etl_dag"}

    refused = await client.post(f"{DAGS}/ml_dag/runs", json={"run_id": "r2", "tasks": ["t"]}, headers=etl)
    assert refused.status_code == 403
    assert refused.json()["detail"]["reason"] == "team_required"
    assert "team ml" in refused.json()["detail"]["message"]
    ml_ti = (await client.get("/control/v1/task-instances?dag_id=ml_dag", headers=admin)).json()[0]
    for method, suffix in (("GET", ""), ("POST", "/queue"), ("POST", "/revoke-tokens")):
        answer = await client.request(method, f"/control/v1/task-instances/{ml_ti['id']}{suffix}", headers=etl)
        assert (answer.status_code, answer.json()["detail"]["reason"]) == (403, "team_required")


async def test_a_task_token_is_no_operator_key(client, factory) -> None:
    ti = await factory.queued_ti()
    for token in (ti.workload_token, factory.token(ti.id)):
        answer = await client.get(DAGS, headers=bearer(token))
        assert (answer.status_code, answer.json()["detail"]["reason"]) == (401, "invalid_key")


async def test_an_operator_key_is_no_task_token(client, factory, operator_key) -> None:
    ti = await factory.running_row()
    headers = await operator_key(Role.ADMIN)
    answer = await client.put(f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY,
                              headers=headers)
    assert answer.status_code == 403
    assert answer.json()["detail"] == "Invalid auth token"
