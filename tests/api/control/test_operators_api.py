"""Operators over the control API: made by an admin of every team, the key answered
once, revoked from the next request on."""

from __future__ import annotations

from taskgate.services.operators import Role
from tests.support.api import bearer

OPERATORS = "/control/v1/operators"


async def test_an_admin_makes_lists_and_revokes_operators(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    made = await client.post(OPERATORS, headers=admin, json={"name": "ci", "role": "reader", "teams": ["etl"]})
    assert made.status_code == 201, made.text
    key = made.json()["key"]
    ci = bearer(key)
    assert (await client.get("/control/v1/dags", headers=ci)).status_code == 200

    listed = await client.get(OPERATORS, headers=admin)
    assert key not in listed.text
    assert {o["name"]: o["teams"] for o in listed.json()} == {"op1": [], "ci": ["etl"]}
    again = await client.post(OPERATORS, headers=admin, json={"name": "ci", "role": "admin"})
    assert (again.status_code, again.json()["detail"]["reason"]) == (409, "operator_exists")
    bad = await client.post(OPERATORS, headers=admin, json={"name": "x", "role": "root"})
    assert bad.status_code == 422

    revoked = await client.delete(f"{OPERATORS}/ci", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert (await client.get("/control/v1/dags", headers=ci)).status_code == 401
    assert (await client.delete(f"{OPERATORS}/nobody", headers=admin)).status_code == 404


async def test_only_an_admin_of_every_team_manages_operators(client, operator_key) -> None:
    team_admin = await operator_key(Role.ADMIN, "etl")
    for method, path, body in (("GET", OPERATORS, None),
                               ("POST", OPERATORS, {"name": "x", "role": "admin"}),
                               ("DELETE", f"{OPERATORS}/op1", None)):
        answer = await client.request(method, path, headers=team_admin, json=body)
        assert (answer.status_code, answer.json()["detail"]["reason"]) == (403, "team_required")
    operator = await operator_key(Role.OPERATOR)
    answer = await client.get(OPERATORS, headers=operator)
    assert (answer.status_code, answer.json()["detail"]["reason"]) == (403, "role_required")
