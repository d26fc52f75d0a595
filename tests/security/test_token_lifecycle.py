"""Tokens are bound to their TI's life: single-use workload tokens, revocation, ended TIs."""

import asyncio
import time
import uuid

import httpx
import pytest

from taskgate.services import variables
from tests.support.api import BEAT_BODY, RUN_BODY, SUCCESS_BODY, bearer
from tests.support.database import fresh_ti

NEAR_EXPIRY = 25


def url(ti_id, suffix):
    return f"/execution/task-instances/{ti_id}/{suffix}"


async def test_workload_token_is_single_use(client, factory):
    ti = await factory.queued_ti()
    first = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(ti.workload_token))
    assert first.status_code == 200
    replay = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(ti.workload_token))
    assert replay.status_code == 409
    assert replay.json()["detail"]["reason"] == "token_reused"
    assert replay.headers["Taskgate-Reason"] == "workload_token_reused"
    assert "Refreshed-API-Token" not in replay.headers


async def test_replay_is_refused_after_the_ti_is_queued_again(client, factory, runtime):
    ti, token = await factory.running_ti(client, max_tries=1)
    retry = {"state": "up_for_retry", "end_date": "2026-01-01T00:01:00Z"}
    assert (await client.patch(url(ti.id, "state"), json=retry, headers=bearer(token))).status_code == 204
    requeued = await runtime.lifecycle.queue(ti.id)
    replay = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(ti.workload_token))
    assert replay.status_code == 409 and replay.json()["detail"]["reason"] == "token_reused"
    assert replay.headers["Taskgate-Reason"] == "workload_token_reused"
    # The new try's own workload token works, and the old try's execution token does not.
    fresh = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(requeued.workload_token))
    assert fresh.status_code == 200
    old = await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=bearer(token))
    assert (old.status_code, old.json()) == (403, {"detail": "Token has been revoked"})
    assert old.headers["Taskgate-Reason"] == "revoked"


async def test_concurrent_replays_of_one_workload_token(client, factory):
    ti = await factory.queued_ti()
    responses = await asyncio.gather(
        *(client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(ti.workload_token)) for _ in range(20))
    )
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1 and statuses.count(409) == 19, statuses


async def test_unused_workload_token_of_an_earlier_queueing_is_refused(client, factory, runtime):
    ti = await factory.queued_ti()
    await runtime.lifecycle.revoke_tokens(ti.id)
    response = await client.patch(url(ti.id, "run"), json=RUN_BODY, headers=bearer(ti.workload_token))
    assert (response.status_code, response.json()) == (403, {"detail": "Token has been revoked"})
    assert response.headers["Taskgate-Reason"] == "revoked"


async def test_revocation_refuses_current_tokens_and_spares_later_ones(client, factory, runtime):
    ti, token = await factory.running_ti(client)
    assert (await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=bearer(token))).status_code == 204
    await runtime.lifecycle.revoke_tokens(ti.id)
    runtime.standing.forget(ti.id)  # this process's cache; other replicas: see the live test
    for method, path, body in (("PUT", url(ti.id, "heartbeat"), BEAT_BODY),
                               ("GET", "/execution/variables/x", None)):
        refused = await client.request(method, path, json=body, headers=bearer(token))
        assert (refused.status_code, refused.json()) == (403, {"detail": "Token has been revoked"})
        assert refused.headers["Taskgate-Reason"] == "revoked"
    later = factory.token(ti.id)
    assert (await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=bearer(later))).status_code == 204


async def test_the_heartbeat_refuses_a_revoked_token_at_once_whatever_the_gate_cached(
    client, factory, runtime
):
    """The heartbeat's UPDATE is its token gate: a revocation committed elsewhere (another
    replica: this process's cache is not told) refuses the next heartbeat, not one up to a
    second later, and nothing is written for it."""
    ti, _ = await factory.running_ti(client)
    near_expiry = bearer(factory.token(ti.id, ttl=NEAR_EXPIRY))
    assert (await client.get("/execution/variables/x", headers=near_expiry)).status_code == 404
    assert runtime.standing._cache  # the gate holds the TI's standing for a second
    await runtime.lifecycle.revoke_tokens(ti.id)
    before = (await fresh_ti(runtime, ti.id)).last_heartbeat_at
    refused = await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=near_expiry)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Token has been revoked"})
    assert refused.headers["Taskgate-Reason"] == "revoked"
    assert "Refreshed-API-Token" not in refused.headers
    assert (await fresh_ti(runtime, ti.id)).last_heartbeat_at == before
    later = factory.token(ti.id)
    assert (await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=bearer(later))).status_code == 204


async def test_ended_ti_tokens_are_refused_and_never_refreshed(client, factory, runtime):
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "v", "1")
    ti, _ = await factory.running_ti(client)
    short = bearer(factory.token(ti.id, ttl=NEAR_EXPIRY))  # would be refreshed while running
    beat = await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=short)
    assert beat.status_code == 204 and "Refreshed-API-Token" in beat.headers
    done = await client.patch(url(ti.id, "state"), json=SUCCESS_BODY, headers=short)
    assert done.status_code == 204
    assert "Refreshed-API-Token" not in done.headers  # the request that ended the TI
    after = await client.put(url(ti.id, "heartbeat"), json=BEAT_BODY, headers=short)
    assert after.status_code == 409 and after.json()["detail"]["reason"] == "not_running"
    assert after.headers["Taskgate-Reason"] == "not_running"
    assert "Refreshed-API-Token" not in after.headers
    repeat = await client.patch(url(ti.id, "state"), json=SUCCESS_BODY, headers=short)
    assert repeat.status_code == 204 and "Refreshed-API-Token" not in repeat.headers
    for method, path in (("GET", "/execution/variables/v"), ("PUT", url(ti.id, "rtif")),
                         ("POST", f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/k")):
        refused = await client.request(method, path, json={}, headers=short)
        assert refused.status_code == 403, path
        assert refused.json() == {"detail": "Task instance has ended; its tokens are no longer accepted"}
        assert refused.headers["Taskgate-Reason"] == "ti_ended"


@pytest.mark.integration
async def test_revoke_through_another_connection_reaches_a_replica_within_a_second(live_server, factory, runtime):
    """The server has its own engine and cache; the revoke goes through the test's."""
    ti = await factory.queued_ti()
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution") as http:
        run = await http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(ti.workload_token))
        token = bearer(run.headers["Refreshed-API-Token"])
        assert (await http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)).status_code == 204
        await runtime.lifecycle.revoke_tokens(ti.id)
        time.sleep(live_server.runtime.settings.token_standing_cache_seconds + 0.05)
        refused = await http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)
    assert (refused.status_code, refused.json()) == (403, {"detail": "Token has been revoked"})
    assert refused.headers["Taskgate-Reason"] == "revoked"


async def test_expired_workload_token_records_are_purged(client, factory, runtime):
    from sqlalchemy import select

    from taskgate.db.models import UsedWorkloadToken

    async with runtime.sessionmaker() as session:
        session.add(UsedWorkloadToken(jti="old", ti_id=uuid.uuid4(), expires_at=time.time() - 1))
        await session.commit()
    await factory.running_ti(client)
    async with runtime.sessionmaker() as session:
        jtis = set((await session.execute(select(UsedWorkloadToken.jti))).scalars())
    assert "old" not in jtis and len(jtis) == 1
