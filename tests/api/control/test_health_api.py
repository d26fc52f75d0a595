"""The control API's health: database, signing key and accepted keys (ids, never
material), and the replicas that announced themselves recently, on both backends."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update

from taskgate.db.models import Replica, utcnow
from taskgate.services import replicas
from taskgate.services.operators import Role

HEALTH = "/control/v1/health"


async def test_keys_and_replicas_seen(client, runtime, operator_key) -> None:
    async with runtime.sessionmaker() as session:
        await replicas.announce(session, runtime.replica)
        other = replicas.ThisReplica(hostname="node-b", pid=4242)
        await replicas.announce(session, other)
        silent = replicas.ThisReplica(hostname="node-c", pid=7)
        await replicas.announce(session, silent)
        await session.execute(update(Replica).where(Replica.replica_id == silent.replica_id)
                              .values(last_seen_at=utcnow() - timedelta(minutes=1)))
        await session.commit()
    answer = await client.get(HEALTH, headers=await operator_key(Role.READER, "any-team"))
    assert answer.status_code == 200, answer.text
    health = answer.json()
    assert health["database"] == "ok"
    jwks = (await client.get("/.well-known/jwks.json")).json()
    assert health["signing_key"]["kid"] in {key["kid"] for key in jwks["keys"]}
    assert health["signing_key"] in health["accepted_keys"]
    assert [r["hostname"] for r in health["replicas"]][1:] == ["node-b"]
    assert health["replicas"][0]["replica_id"] == health["this_replica"]
    assert health["replicas"][1]["pid"] == 4242
    assert "PRIVATE" not in json.dumps(health) and '"d"' not in json.dumps(health)
    assert (await client.get(HEALTH)).status_code == 401


async def test_a_replica_announces_itself_again_and_is_forgotten_a_day_after(runtime) -> None:
    async with runtime.sessionmaker() as session:
        await replicas.announce(session, runtime.replica)
        first = (await replicas.seen(session))[0].last_seen_at
        await replicas.announce(session, runtime.replica)
        again = await replicas.seen(session)
        assert len(again) == 1 and again[0].last_seen_at >= first
        await session.execute(update(Replica).values(last_seen_at=utcnow() - timedelta(days=2)))
        await session.commit()
        assert await replicas.seen(session) == []
        assert await replicas.purge(session) == 1


@pytest.mark.integration
async def test_a_serving_replica_announces_itself(live_server, operator_key) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        answer = await http.get(HEALTH, headers=await operator_key(Role.READER))
    health = answer.json()
    assert [r["replica_id"] for r in health["replicas"]] == [health["this_replica"]]
    assert health["this_replica"] == live_server.runtime.replica.replica_id
