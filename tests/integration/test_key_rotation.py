"""Signing-key rotation while workers heartbeat: not one request fails."""

import asyncio
import threading

import httpx
import jwt
import pytest

from taskgate.key_rotation import rotate_signing_key
from taskgate.settings import Settings
from taskgate.tokens import keys as keylib
from tests.support.api import BEAT_BODY, RUN_BODY, bearer

pytestmark = pytest.mark.integration

WORKERS = 8


@pytest.fixture
def settings(data_dir, database_url):
    # Reload keys often and refresh tokens on nearly every request (31 s TTL, 30 s floor).
    return Settings(data_dir=data_dir, database_url=database_url, key_reload_seconds=0.2,
                    execution_token_ttl=31)


async def test_rotation_under_load(live_server, factory, settings):
    tis = [await factory.queued_ti(task_id=f"t{i}") for i in range(WORKERS)]
    old_kid = live_server.runtime.keys.signing.kid
    statuses: list[int] = []
    kids_seen: set[str] = set()
    stop = asyncio.Event()

    async def worker(http: httpx.AsyncClient, ti) -> None:
        run = await http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(ti.workload_token))
        statuses.append(run.status_code)
        token = run.headers["Refreshed-API-Token"]
        while not stop.is_set():
            beat = await http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=bearer(token))
            statuses.append(beat.status_code)
            if fresh := beat.headers.get("Refreshed-API-Token"):
                token = fresh
                kids_seen.add(jwt.get_unverified_header(token)["kid"])
            await asyncio.sleep(0.05)

    rotated: dict[str, str] = {}

    def rotate() -> None:
        rotated["kids"] = rotate_signing_key(settings, keylib.KeyType.ED25519, propagation_wait=0.6)

    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution") as http:
        tasks = [asyncio.create_task(worker(http, ti)) for ti in tis]
        await asyncio.sleep(1.0)
        rotator = threading.Thread(target=rotate)
        rotator.start()
        while rotator.is_alive():
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.5)  # the server picks up the new signing key, workers refresh
        stop.set()
        await asyncio.gather(*tasks)

    old, new = rotated["kids"]
    assert old == old_kid and new != old_kid
    assert statuses and set(statuses) == {200, 204}, sorted(set(statuses))
    assert {old, new} <= kids_seen  # tokens from both keys were in use, and both worked
    assert live_server.runtime.keys.signing.kid == new
