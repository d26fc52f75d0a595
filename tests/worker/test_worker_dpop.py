"""`taskgate worker run` proves a DPoP key of its own by default: a DAG whose tasks may
start only with a proof (``token_binding="dpop"``) runs under it, over HTTP and
in-process, and every request is proved (the server records each proof it accepts).
``--no-dpop`` runs on bearer tokens."""

from __future__ import annotations

import json
import re
import sys

import pytest
from sqlalchemy import func, select

from taskgate.db.models import DPoPProofUse, XCom
from taskgate.services import control
from tests.support.workloads import finish, start_worker, worker_env

pytestmark = pytest.mark.integration

# Long enough for a few heartbeats at the interval below; writes the return_value XCom.
TASK = (sys.executable, "-c", (
    "import json, os, time; time.sleep(1.5); "
    "json.dump({'rows': 3}, open(os.environ['TASKGATE_XCOM_FILE'], 'w'))"
))
INTERVAL = 0.3


async def require_dpop(runtime) -> None:  # type: ignore[no-untyped-def]
    """The workloads' DAG starts its tasks only with a DPoP proof (their tokens are bound)."""
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "dag", token_binding="dpop")


async def proof_uses(runtime) -> int:  # type: ignore[no-untyped-def]
    async with runtime.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(DPoPProofUse))


def heartbeats(err: str) -> int:
    summary = err.splitlines()[-1]
    return int(re.search(r"(\d+) heartbeats?", summary).group(1))


async def test_the_worker_binds_its_token_by_default(live_server, workloads, runtime, settings):
    await require_dpop(runtime)
    ti_id = await workloads.new_ti()
    code, _out, err = finish(start_worker(
        await workloads.queue(ti_id), *TASK, env=worker_env(settings),
        api_url=f"{live_server.url}/execution", interval=INTERVAL,
    ))
    assert code == 0, err
    assert (await workloads.ti(ti_id)).state == "success"
    note = re.search(r"token bound to DPoP key ([A-Za-z0-9_-]{43})", err)
    assert note, err
    # /run, every heartbeat, the XCom push and the final report: each proved once.
    beats = heartbeats(err)
    assert beats >= 1
    assert await proof_uses(runtime) >= 3 + beats
    async with runtime.sessionmaker() as session:
        stored = (await session.execute(
            select(XCom).where(XCom.key == "return_value"))).scalar_one()
    assert json.loads(stored.value) == {"rows": 3}


async def test_no_dpop_uses_bearer_tokens(live_server, workloads, runtime, settings):
    ti_id = await workloads.new_ti()
    code, _out, err = finish(start_worker(
        await workloads.queue(ti_id), *TASK, env=worker_env(settings),
        api_url=f"{live_server.url}/execution", interval=INTERVAL, extra=("--no-dpop",),
    ))
    assert code == 0, err
    assert "bearer token (--no-dpop)" in err
    assert (await workloads.ti(ti_id)).state == "success"
    assert heartbeats(err) >= 1
    assert await proof_uses(runtime) == 0


async def test_no_dpop_cannot_start_a_task_that_requires_a_key(
    live_server, workloads, runtime, settings
):
    await require_dpop(runtime)
    ti_id = await workloads.new_ti()
    code, _out, err = finish(start_worker(
        await workloads.queue(ti_id), "true", env=worker_env(settings),
        api_url=f"{live_server.url}/execution", extra=("--no-dpop",),
    ))
    assert code == 1
    assert "401" in err and "dag_requires_dpop" in err, err
    assert (await workloads.ti(ti_id)).state == "queued"  # the workload token is unspent


async def test_in_process_worker_proves_its_key(workloads, runtime, settings):
    await require_dpop(runtime)
    ti_id = await workloads.new_ti()
    code, _out, err = finish(start_worker(
        await workloads.queue(ti_id), *TASK, env=worker_env(settings), interval=INTERVAL,
    ))
    assert code == 0, err
    assert "token bound to DPoP key" in err
    assert (await workloads.ti(ti_id)).state == "success"
    assert await proof_uses(runtime) >= 3 + heartbeats(err)
