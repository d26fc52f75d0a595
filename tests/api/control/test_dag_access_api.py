"""Declared access over the control API: readers see it, admins set and clear it, teams
fence it, each change is an event, and the Execution API applies it."""

from __future__ import annotations

from taskgate.services import events, variables
from taskgate.services.operators import Role
from tests.support.api import bearer

CONTROL = "/control/v1"


async def test_admins_declare_readers_see_and_tasks_obey(client, runtime, factory, operator_key) -> None:
    admin, reader = await operator_key(Role.ADMIN), await operator_key(Role.READER)
    assert (await client.put(f"{CONTROL}/dags/etl", json={"team": "data"}, headers=admin)).status_code == 200
    url = f"{CONTROL}/dags/etl/access"
    shown = await client.get(url, headers=reader)
    assert shown.json() == {"dag_id": "etl", "declared": False, "variables": [],
                            "connections": [], "xcom_from": [], "tasks": {}}

    refused = await client.put(url, json={"variables": ["etl_*"]}, headers=reader)
    assert (refused.status_code, refused.headers["Taskgate-Reason"]) == (403, "role_required")
    declared = await client.put(url, json={"variables": ["etl_*"], "connections": ["wh"]}, headers=admin)
    assert declared.status_code == 200, declared.text
    per_task = await client.put(url, json={"task_id": "load", "xcom_from": ["up"]}, headers=admin)
    assert per_task.json() == {
        "dag_id": "etl", "declared": True, "variables": ["etl_*"], "connections": ["wh"],
        "xcom_from": [], "tasks": {"load": {"variables": [], "connections": [], "xcom_from": ["up"]}},
    }
    assert (await client.get(url, headers=reader)).json() == per_task.json()

    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "plain", "v", team="data")
        actions = [r.data["action"] for r in await events.read(session, after=None, dag_id="etl")]
    assert actions.count("dag.access") == 2
    _ti, token = await factory.running_ti(client, dag_id="etl", team="data")
    denied = await client.get("/execution/variables/plain", headers=bearer(token))
    assert (denied.status_code, denied.headers["Taskgate-Reason"]) == (403, "not_declared")

    cleared = await client.delete(url, headers=admin)
    assert cleared.json()["declared"] is False
    assert (await client.get(url, headers=reader)).json()["declared"] is False


async def test_bad_declarations_and_other_teams_are_refused(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    await client.put(f"{CONTROL}/dags/etl", json={"team": "data"}, headers=admin)
    empty = await client.put(f"{CONTROL}/dags/etl/access", json={"variables": [""]}, headers=admin)
    assert (empty.status_code, empty.json()["detail"]["reason"]) == (422, "invalid_declaration")
    unknown = await client.get(f"{CONTROL}/dags/nope/access", headers=admin)
    assert unknown.status_code == 404
    ml_admin = await operator_key(Role.ADMIN, "ml")
    other = await client.put(f"{CONTROL}/dags/etl/access", json={"variables": ["x"]}, headers=ml_admin)
    assert (other.status_code, other.headers["Taskgate-Reason"]) == (403, "team_required")
    hidden = await client.get(f"{CONTROL}/dags/etl/access", headers=ml_admin)
    assert hidden.status_code == 403
