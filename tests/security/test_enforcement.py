"""The three layers and the re-issue step, end to end through the real app (in-process)."""

import time
import uuid

import pytest

from taskgate.db.models import TaskInstance
from taskgate.security.reissue import needs_refresh
from taskgate.tokens import TokenIssuer, TokenType
from tests.support.api import BEAT_BODY, RUN_BODY, bearer, signed

WORKLOAD_REFUSED = "Token type 'workload' not allowed for this endpoint. Allowed types: execution"


NEAR_EXPIRY = 25  # seconds: below the 30 s refresh floor from the start


async def test_missing_or_empty_bearer_is_401(client, factory):
    ti = await factory.queued_ti()
    url = f"/execution/task-instances/{ti.id}/heartbeat"
    for headers in ({}, {"Authorization": ""}, {"Authorization": "Bearer "},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await client.put(url, json=BEAT_BODY, headers=headers)
        assert response.status_code == 401, headers
        assert response.json() == {"detail": "Missing auth token"}
        assert response.headers["Taskgate-Reason"] == "missing_token"
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_two_authorization_headers_are_400(client, factory):
    ti, token = await factory.running_ti(client)
    response = await client.put(
        f"/execution/task-instances/{ti.id}/heartbeat",
        json=BEAT_BODY,
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert response.status_code == 400


async def test_workload_token_is_refused_on_default_routes(client, factory):
    ti = await factory.queued_ti()
    workload = bearer(ti.workload_token)
    calls = [
        ("PUT", f"/execution/task-instances/{ti.id}/heartbeat", BEAT_BODY),
        ("PATCH", f"/execution/task-instances/{ti.id}/state",
         {"state": "success", "end_date": "2026-01-01T00:00:00Z"}),
        ("GET", "/execution/variables/x", None),
        ("GET", "/execution/connections/x", None),
        ("GET", f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/k", None),
    ]
    for method, url, body in calls:
        response = await client.request(method, url, json=body, headers=workload)
        assert response.status_code == 403, url
        assert response.json() == {"detail": WORKLOAD_REFUSED}
        assert response.headers["Taskgate-Reason"] == "token_type_not_allowed"
        assert "Refreshed-API-Token" not in response.headers


async def test_workload_token_starts_the_ti_and_is_exchanged(client, factory, runtime):
    ti = await factory.queued_ti()
    response = await client.patch(
        f"/execution/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(ti.workload_token)
    )
    assert response.status_code == 200
    fresh = runtime.validator.validate(response.headers["Refreshed-API-Token"])
    assert fresh.token_type is TokenType.EXECUTION and fresh.sub == ti.id


async def test_execution_token_is_accepted_on_run_and_default_routes(client, factory):
    ti = await factory.queued_ti()
    token = bearer(factory.token(ti.id))
    run = await client.patch(f"/execution/task-instances/{ti.id}/run", json=RUN_BODY, headers=token)
    assert run.status_code == 200
    assert "Refreshed-API-Token" not in run.headers  # fresh execution token: nothing to renew
    beat = await client.put(f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)
    assert beat.status_code == 204


async def test_token_without_scope_is_an_execution_token(client, factory, runtime):
    ti, _ = await factory.running_ti(client)
    now = time.time()  # after the queue's token watermark
    claims = {"aud": runtime.settings.audience, "sub": str(ti.id), "iat": now, "exp": now + 600}
    token = signed(runtime, claims)
    response = await client.put(
        f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=bearer(token)
    )
    assert response.status_code == 204


async def test_unknown_scope_is_refused_with_its_value(client, factory, runtime):
    ti, _ = await factory.running_ti(client)
    now = int(time.time())
    claims = {"aud": runtime.settings.audience, "sub": str(ti.id), "iat": now, "exp": now + 60,
              "scope": "admin"}
    token = signed(runtime, claims)
    response = await client.put(
        f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=bearer(token)
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid token scope: admin"}
    assert response.headers["Taskgate-Reason"] == "invalid_scope"


async def test_token_of_another_ti_is_refused(client, factory):
    ti, _ = await factory.running_ti(client)
    _other, other_token = await factory.running_ti(client)
    for method, suffix in (("PUT", "heartbeat"), ("PATCH", "run")):
        response = await client.request(
            method, f"/execution/task-instances/{ti.id}/{suffix}",
            json=BEAT_BODY if suffix == "heartbeat" else RUN_BODY, headers=bearer(other_token),
        )
        assert response.status_code == 403
        assert response.json() == {"detail": "Token subject does not match task instance ID"}
        assert response.headers["Taskgate-Reason"] == "subject_mismatch"


async def test_the_subject_binding_compares_uuids_not_their_spelling(client, factory, runtime):
    ti, token = await factory.running_ti(client)
    for spelling in (str(ti.id).upper(), ti.id.hex):
        response = await client.put(
            f"/execution/task-instances/{spelling}/heartbeat", json=BEAT_BODY, headers=bearer(token)
        )
        assert response.status_code == 204, (spelling, response.text)
    # A token that spells its subject in capitals binds to the same TI.
    now = time.time()  # after the token watermark /run set
    claims = {"aud": runtime.settings.audience, "sub": str(ti.id).upper(), "iat": now,
              "exp": now + 60, "jti": "capitals"}
    capitals = signed(runtime, claims)
    response = await client.put(
        f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=bearer(capitals)
    )
    assert response.status_code == 204, response.text


async def test_non_uuid_path_with_valid_token_is_refused(client, factory):
    _ti, token = await factory.running_ti(client)
    response = await client.put(
        "/execution/task-instances/not-a-uuid/heartbeat", json=BEAT_BODY, headers=bearer(token)
    )
    assert response.status_code == 403


async def test_forged_token_is_403_without_internals(client, factory):
    from taskgate.tokens import keys as keylib

    ti, _ = await factory.running_ti(client)
    stranger = keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))
    forged = TokenIssuer(stranger, audience="urn:taskgate:task").issue(ti.id)
    response = await client.put(
        f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=bearer(forged)
    )
    assert response.status_code == 403
    assert response.json() == {"detail": "Invalid auth token"}


async def test_one_signature_validation_per_request_including_reissue(client, factory, runtime):
    ti = await factory.queued_ti()
    # A near-expiry execution token: /run has two require_auth uses and re-issues.
    token = bearer(factory.token(ti.id, ttl=NEAR_EXPIRY))
    before = runtime.validator.signature_checks
    response = await client.patch(f"/execution/task-instances/{ti.id}/run", json=RUN_BODY, headers=token)
    assert response.status_code == 200
    assert "Refreshed-API-Token" in response.headers
    assert runtime.validator.signature_checks == before + 1
    # The same token again: served from the verified-token cache, no signature check.
    again = await client.put(f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)
    assert again.status_code == 204
    assert runtime.validator.signature_checks == before + 1


async def test_reissue_only_near_expiry_with_same_subject_and_scope(client, factory, runtime):
    ti, fresh = await factory.running_ti(client)
    url = f"/execution/task-instances/{ti.id}/heartbeat"
    response = await client.put(url, json=BEAT_BODY, headers=bearer(fresh))
    assert "Refreshed-API-Token" not in response.headers
    old = factory.token(ti.id, ttl=NEAR_EXPIRY)
    response = await client.put(url, json=BEAT_BODY, headers=bearer(old))
    assert response.status_code == 204
    renewed = runtime.validator.validate(response.headers["Refreshed-API-Token"])
    assert renewed.sub == ti.id and renewed.token_type is TokenType.EXECUTION
    assert renewed.exp > runtime.validator.validate(old).exp


async def test_the_ti_notes_when_its_newest_execution_token_expires(client, factory, runtime):
    async def noted() -> float | None:
        async with runtime.sessionmaker() as session:
            return (await session.get(TaskInstance, ti.id, populate_existing=True)).token_expires_at

    ti, issued = await factory.running_ti(client)
    assert await noted() == runtime.validator.validate(issued).exp  # at the /run exchange
    url = f"/execution/task-instances/{ti.id}/heartbeat"
    response = await client.put(url, json=BEAT_BODY,
                                headers=bearer(factory.token(ti.id, ttl=NEAR_EXPIRY)))
    renewed = runtime.validator.validate(response.headers["Refreshed-API-Token"])
    assert await noted() == renewed.exp > runtime.validator.validate(issued).exp  # re-issued
    # A token re-issued to a request whose TI just ended is not handed out, nor noted.
    answer = await client.patch(f"/execution/task-instances/{ti.id}/state",
                                json={"state": "success", "end_date": "2026-01-01T00:00:00Z"},
                                headers=bearer(factory.token(ti.id, ttl=NEAR_EXPIRY)))
    assert answer.status_code == 204 and "Refreshed-API-Token" not in answer.headers
    assert await noted() == renewed.exp


async def test_refused_request_never_gets_a_fresh_token(client, factory, runtime):
    ti, _ = await factory.running_ti(client)
    other = await factory.queued_ti()
    near_expiry = factory.token(other.id, ttl=NEAR_EXPIRY)
    response = await client.put(
        f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=bearer(near_expiry)
    )
    assert response.status_code == 403
    assert "Refreshed-API-Token" not in response.headers


def test_refresh_threshold_is_20_percent_with_30_s_floor():
    from taskgate.tokens.claims import ExecutionToken, WorkloadToken

    def token(cls, lifetime):
        return cls(sub=uuid.uuid4(), jti="j", iat=0, nbf=0, exp=lifetime, claims={})

    assert not needs_refresh(token(ExecutionToken, 600), now=479)  # 121 s left
    assert needs_refresh(token(ExecutionToken, 600), now=481)  # 119 s left
    assert not needs_refresh(token(ExecutionToken, 45), now=14)  # 31 s left: floor is 30 s
    assert needs_refresh(token(ExecutionToken, 45), now=16)
    assert not needs_refresh(token(WorkloadToken, 600), now=599)


@pytest.mark.parametrize("path", ["/execution/health", "/execution/health/ping", "/.well-known/jwks.json"])
async def test_open_routes_need_no_token(client, path):
    assert (await client.get(path)).status_code == 200
