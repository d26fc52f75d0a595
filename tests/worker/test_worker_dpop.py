"""`taskgate worker run` proves a DPoP key of its own by default: a DAG whose tasks may
start only with a proof (``token_binding="dpop"``) runs under it, over HTTP and
in-process, and every request is proved (the server records each proof it accepts).
``--no-dpop`` runs on bearer tokens. A copy of a worker's token, without its key, is
refused on every route."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

import httpx
import pytest
from sqlalchemy import func, select

from taskgate.api.app import create_app
from taskgate.db.models import DPoPProofUse, XCom
from taskgate.runtime import Runtime
from taskgate.security.route_policy import route_policies
from taskgate.services import control
from tests.support.asgi_server import serving
from tests.support.dpop import ProofKey
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


class TokenTap:
    """What a sidecar on the worker's path sees: every ``Authorization`` header value."""

    def __init__(self, app) -> None:  # type: ignore[no-untyped-def]
        self.app = app
        self.seen: list[str] = []

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            self.seen += [v.decode() for k, v in scope["headers"] if k == b"authorization"]
        await self.app(scope, receive, send)


def _example_path(path: str, ti_id: str) -> str:
    values = {"task_instance_id": ti_id, "dag_id": "dag", "run_id": "run", "task_id": "task",
              "key": "key", "offset": "0", "variable_key": "v", "connection_id": "c"}
    return re.sub(r"{(\w+)}", lambda m: values[m.group(1)], path)


async def test_a_copy_of_the_workers_token_is_refused_on_every_route(
    workloads, runtime, settings
):
    """The execution token leaks while the task runs (here: read off the wire by a tap in
    front of the server); another process holding it, but not the worker's key, is
    refused on every route that takes an execution token, and the task is undisturbed."""
    await require_dpop(runtime)
    ti_id = await workloads.new_ti()
    server_runtime = Runtime.from_settings(settings)
    app = create_app(server_runtime)
    tap = TokenTap(app)
    routes = [p for p in route_policies(app.routes) if "execution" in p.token_types]
    assert len(routes) >= 30
    with serving(tap, lifespan="on") as url:
        worker = start_worker(
            await workloads.queue(ti_id), sys.executable, "-c", "import time; time.sleep(4)",
            env=worker_env(settings), api_url=f"{url}/execution", interval=INTERVAL,
        )
        deadline = time.monotonic() + 20
        while not any(v.startswith("DPoP ") for v in tap.seen):
            assert time.monotonic() < deadline and worker.poll() is None, "no bound request"
            await asyncio.sleep(0.05)
        stolen = next(v for v in tap.seen if v.startswith("DPoP ")).partition(" ")[2]
        thief = ProofKey()
        refused: dict[str, set[str]] = {}
        async with httpx.AsyncClient(timeout=10) as http:
            for route in routes:
                target = url + _example_path(route.path, str(ti_id))
                body = {} if route.method in ("PUT", "POST", "PATCH") else None
                for attempt, headers in {
                    "as Bearer": {"Authorization": f"Bearer {stolen}"},
                    "without a proof": {"Authorization": f"DPoP {stolen}"},
                    "with another key's proof": thief.headers(route.method, target, stolen),
                }.items():
                    answer = await http.request(route.method, target, json=body,
                                                headers=headers)
                    assert answer.status_code == 401, (route.method, route.path, attempt)
                    refused.setdefault(attempt, set()).add(answer.headers["Taskgate-Reason"])
        code, _out, err = finish(worker)
    await server_runtime.aclose()
    assert refused == {"as Bearer": {"dpop_proof_required"},
                       "without a proof": {"missing_dpop_proof"},
                       "with another key's proof": {"key_mismatch"}}
    assert code == 0, err
    assert (await workloads.ti(ti_id)).state == "success"
