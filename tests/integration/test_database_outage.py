"""A PostgreSQL outage: taskgate answers 503 within 2 s while the database is down and
recovers by itself when it returns. The test runs its own throwaway cluster (own data
directory and port), so the machine's PostgreSQL is never touched. Shorter faults of
every kind: test_fault_matrix.py."""

import asyncio
import time

import httpx
import pytest

from taskgate.runtime import Runtime
from taskgate.settings import Settings
from tests.support.api import BEAT_BODY, RUN_BODY, bearer

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(data_dir, cluster):
    return Settings(data_dir=data_dir, database_url=cluster.url(), token_standing_cache_seconds=0)


@pytest.fixture
async def runtime(settings):
    from taskgate.db import migrate

    rt = Runtime.from_settings(settings)
    await migrate.upgrade(rt.engine)
    yield rt
    await rt.aclose()


async def test_outage_answers_503_fast_and_recovers(live_server, factory, cluster):
    ti = await factory.queued_ti()
    await factory.runtime.engine.dispose()  # the test's own connections must not linger
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution", timeout=10) as http:
        run = await http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(ti.workload_token))
        token = bearer(run.headers["Refreshed-API-Token"])
        assert (await http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)).status_code == 204

        cluster.stop()
        for _ in range(3):
            started = time.monotonic()
            down = await http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)
            elapsed = time.monotonic() - started
            assert down.status_code == 503, down.text
            assert down.json()["detail"]["reason"] == "database_unavailable"
            assert elapsed < 2.0, elapsed

        cluster.start()
        deadline = time.monotonic() + 15
        while True:
            up = await http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)
            if up.status_code == 204:
                break
            assert up.status_code == 503 and time.monotonic() < deadline, up.text
            await asyncio.sleep(0.2)
