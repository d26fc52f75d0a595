"""Operator page sessions: a key traded for an HttpOnly, SameSite=Strict cookie; the
cookie then acts as the operator on the control API, changes need the session's CSRF
token, roles and teams apply as with the key, and a session ends on sign-out, at its
expiry, or when its operator is revoked, on the next request."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from taskgate.api.app import create_app
from taskgate.db.models import OperatorSession
from taskgate.services import operators
from taskgate.services.operators import Role

SESSIONS = "/control/v1/sessions"
CURRENT = f"{SESSIONS}/current"
DAGS = "/control/v1/dags"
COOKIE = "taskgate_session"


def reason(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["detail"]["reason"]


async def sign_in(client: httpx.AsyncClient, key: dict[str, str]) -> dict:
    answer = await client.post(SESSIONS, headers=key)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_signing_in_sets_a_strict_http_only_cookie(client, operator_key, runtime) -> None:
    key = await operator_key(Role.OPERATOR, "blue")
    answer = await client.post(SESSIONS, headers=key)
    assert answer.status_code == 201
    body = answer.json()
    assert (body["name"], body["role"], body["teams"]) == ("op1", "operator", ["blue"])
    assert len(body["csrf_token"]) >= 40
    cookie = answer.headers["set-cookie"]
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert {"httponly", "path", "max-age", "samesite"} <= attributes
    assert "samesite=strict" in cookie.lower() and "path=/" in cookie.lower()
    assert "secure" not in attributes  # plain HTTP here; see the HTTPS test
    max_age = int(cookie.lower().split("max-age=")[1].split(";")[0])
    assert 28790 <= max_age <= 28800  # TASKGATE_UI_SESSION_TTL's default
    secret = client.cookies[COOKIE]
    async with runtime.sessionmaker() as session:
        stored = (await session.execute(select(OperatorSession))).scalar_one()
    assert secret not in (stored.session_id, stored.csrf_token)  # only its hash is kept
    assert stored.operator == "op1"


async def test_the_cookie_acts_as_the_operator(client, operator_key) -> None:
    body = await sign_in(client, await operator_key(Role.ADMIN))
    assert (await client.get(DAGS)).status_code == 200  # no Authorization: the cookie
    current = await client.get(CURRENT)
    assert current.status_code == 200
    assert current.json()["csrf_token"] == body["csrf_token"]


async def test_a_change_needs_the_sessions_csrf_token(client, operator_key) -> None:
    body = await sign_in(client, await operator_key(Role.ADMIN))
    assert reason(await client.put(f"{DAGS}/d", json={})) == (403, "csrf_token_required")
    wrong = {"X-CSRF-Token": body["csrf_token"][:-2] + "xx"}
    assert reason(await client.put(f"{DAGS}/d", json={}, headers=wrong)) == (
        403, "csrf_token_required")
    assert (await client.get(DAGS)).json() == []  # nothing was changed
    right = {"X-CSRF-Token": body["csrf_token"]}
    assert (await client.put(f"{DAGS}/d", json={}, headers=right)).status_code == 200
    # A key needs no CSRF token: a page cannot make a browser send it.
    assert (await client.put(f"{DAGS}/e", json={},
                             headers=await operator_key(Role.ADMIN))).status_code == 200


async def test_a_readers_session_may_not_change_anything(client, operator_key, factory) -> None:
    ti, _token = await factory.running_ti(client)
    body = await sign_in(client, await operator_key(Role.READER))
    answer = await client.post(f"/control/v1/task-instances/{ti.id}/revoke-tokens",
                               headers={"X-CSRF-Token": body["csrf_token"]})
    assert reason(answer) == (403, "role_required")


async def test_teams_apply_to_a_session(client, operator_key) -> None:
    admin = await operator_key(Role.ADMIN)
    for dag, team in (("mine", "blue"), ("theirs", "red")):
        assert (await client.put(f"{DAGS}/{dag}", json={"team": team},
                                 headers=admin)).status_code == 200
    body = await sign_in(client, await operator_key(Role.READER, "blue"))
    listed = await client.get(DAGS)
    assert [d["dag_id"] for d in listed.json()] == ["mine"]
    assert reason(await client.put(f"{DAGS}/theirs", json={"team": "red"},
                                   headers={"X-CSRF-Token": body["csrf_token"]})) == (
        403, "role_required")


async def test_signing_out_ends_the_session_everywhere(client, operator_key, runtime) -> None:
    body = await sign_in(client, await operator_key(Role.READER))
    secret = client.cookies[COOKIE]
    assert reason(await client.delete(CURRENT)) == (403, "csrf_token_required")
    answer = await client.delete(CURRENT, headers={"X-CSRF-Token": body["csrf_token"]})
    assert answer.status_code == 204
    assert COOKIE not in client.cookies  # cleared in the browser...
    # ...and refused by the server if it is sent again (a copy kept elsewhere), also on
    # another replica: here a second application on the same database.
    replica = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)),
                                base_url="http://taskgate", cookies={COOKIE: secret})
    async with replica:
        assert reason(await replica.get(DAGS)) == (401, "session_ended")
    client.cookies.set(COOKIE, secret)
    assert reason(await client.get(DAGS)) == (401, "session_ended")


async def test_a_revoked_operators_session_ends_with_it(client, operator_key, runtime) -> None:
    await sign_in(client, await operator_key(Role.ADMIN))
    assert (await client.get(DAGS)).status_code == 200
    async with runtime.sessionmaker() as session:
        await operators.revoke_operator(session, "op1")
    assert reason(await client.get(DAGS)) == (401, "session_ended")


async def test_an_expired_session_is_refused(client, operator_key, runtime) -> None:
    await sign_in(client, await operator_key(Role.ADMIN))
    async with runtime.sessionmaker() as session:
        await session.execute(update(OperatorSession).values(
            expires_at=datetime.now(UTC) - timedelta(seconds=1)))
        await session.commit()
    answer = await client.get(DAGS)
    assert reason(answer) == (401, "session_ended")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert await runtime.purge("operator_sessions") == 1


async def test_a_session_cannot_start_another(client, operator_key) -> None:
    body = await sign_in(client, await operator_key(Role.ADMIN))
    answer = await client.post(SESSIONS, headers={"X-CSRF-Token": body["csrf_token"]})
    assert reason(answer) == (400, "credential_required")


async def test_the_credential_in_authorization_wins_over_the_cookie(client, operator_key) -> None:
    key = await operator_key(Role.ADMIN)
    await sign_in(client, key)
    forged = {"Authorization": key["Authorization"][:-3] + "abc"}
    assert reason(await client.get(DAGS, headers=forged)) == (401, "invalid_key")
    assert reason(await client.get(CURRENT, headers=key)) == (404, "no_session")


@pytest.mark.parametrize("value", [b"", b"x", b"tgs_" + b"A" * 43, "tgs_\u00e9".encode()])
async def test_an_unknown_cookie_is_401(client, value) -> None:
    answer = await client.get(DAGS, headers={"Cookie": f"{COOKIE}=".encode() + value})
    assert reason(answer) == (401, "session_ended")


async def test_over_https_the_cookie_is_secure(runtime, operator_key) -> None:
    app = create_app(runtime)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://taskgate") as client:
        answer = await client.post(SESSIONS, headers=await operator_key(Role.READER))
    assert answer.status_code == 201
    assert "secure" in {p.strip().lower() for p in answer.headers["set-cookie"].split(";")}
