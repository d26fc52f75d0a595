"""Servers under test: what the workloads need to know about each one.

A ``Target`` is a running Execution API on 127.0.0.1 with task instances prepared for the
workloads: running TIs (with execution tokens) for heartbeats, variable reads and XCom
writes, and queued TIs (with the tokens that start them) for whole lifecycles; on taskgate,
on request, running TIs whose execution tokens are bound to a DPoP key as well. Both
taskgate and the Airflow reference speak the same wire protocol, so the workloads in
``compare.py`` drive either without knowing which it is.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from common import PING_PATH, RUN_BODY, TI, TOKEN_LIFETIME_SECONDS, VARIABLE_KEY
from server_process import free_port, stop, wait_healthy


@dataclass
class Target:
    name: str
    port: int
    running: list[TI]  # started with common.RUN_BODY: execution tokens
    queued: list[TI]  # workload tokens: what /run takes
    variable_key: str = VARIABLE_KEY
    headers: dict[str, str] = field(default_factory=dict)  # sent with every request
    # started with RUN_BODY and a DPoP proof: (TI, the caller's key), the token bound to it
    bound: list[tuple[TI, Any]] = field(default_factory=list)

    def take_queued(self) -> TI | None:
        return self.queued.pop() if self.queued else None


# taskgate --------------------------------------------------------------------------------

POSTGRES_ADMIN = os.environ.get("TASKGATE_BENCH_POSTGRES_URL",
                                "postgresql://postgres@127.0.0.1:5432/test")


def postgres_reachable() -> bool:
    import asyncpg

    async def probe() -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN, timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    return True


async def _postgres_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_ADMIN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def migrated_runtime(env: dict[str, str]) -> AsyncIterator[Any]:
    """taskgate's runtime on the data directory and database a server gets in ``env``,
    its schema migrated."""
    from taskgate.db import migrate
    from taskgate.runtime import Runtime
    from taskgate.settings import Settings

    settings = Settings(data_dir=Path(env["TASKGATE_DATA_DIR"]),
                        database_url=env.get("TASKGATE_DATABASE_URL"))
    runtime = Runtime.from_settings(settings)
    try:
        await migrate.upgrade(runtime.engine)
        yield runtime
    finally:
        await runtime.aclose()


async def _prepare_taskgate(env: dict[str, str], n_running: int, n_queued: int,
                            n_bound: int = 0):
    """Schema, DAG, runs and queued TIs, written through taskgate's own control-plane
    services, on the same data directory and database the server gets in ``env``."""
    from taskgate.services import control, variables

    async with migrated_runtime(env) as runtime:
        async with runtime.sessionmaker() as session:
            await control.add_dag(session, "bench")
            await variables.put(session, runtime.secrets, VARIABLE_KEY, "a value")
            prepared = {}
            for run_id, count in (("steady", n_running), ("lifecycles", n_queued),
                                  ("bound", n_bound)):
                if not count:
                    prepared[run_id] = []
                    continue
                created = await control.create_run(
                    session, "bench", run_id, [f"task_{i}" for i in range(count)])
                prepared[run_id] = [(ti, (await runtime.lifecycle.queue(ti.id)).workload_token)
                                    for ti in created.task_instances]
        return prepared


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one benchmark: its ``postgresql://`` URL; dropped
    on exit."""
    name = f"taskgate_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(_postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        asyncio.run(_postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def taskgate(
    backend: str, n_running: int, n_queued: int, settings: dict[str, str] | None = None,
    *, n_bound: int = 0, bind: Callable[[str, str], tuple[Any, str]] | None = None,
) -> Iterator[Target]:
    """``taskgate serve`` as shipped (one worker) on ``backend``: sqlite or postgresql;
    ``settings``: more ``TASKGATE_*`` variables for the server.

    ``n_bound`` more TIs are started with a DPoP proof, so their execution tokens are
    bound to a key (``Target.bound``): ``bind(url, workload_token)`` gives a new key and
    its proof for ``PATCH url``; the key is kept next to the TI."""
    data_dir = tempfile.mkdtemp(prefix="taskgate-bench-")
    env = {"TASKGATE_DATA_DIR": data_dir, "TASKGATE_LOG_LEVEL": "warning",
           "TASKGATE_EXECUTION_TOKEN_TTL": str(TOKEN_LIFETIME_SECONDS),
           "TASKGATE_WORKLOAD_TOKEN_TTL": str(TOKEN_LIFETIME_SECONDS), **(settings or {})}
    with ExitStack() as stack:
        if backend == "postgresql":
            dsn = stack.enter_context(postgres_database())
            env["TASKGATE_DATABASE_URL"] = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        if n_bound and bind is None:
            raise ValueError("n_bound TIs need bind, to sign their /run proofs")
        prepared = asyncio.run(_prepare_taskgate(env, n_running, n_queued, n_bound))
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "taskgate", "serve", "--port", str(port)],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack.callback(stop, server)
        base_url = f"http://127.0.0.1:{port}/execution"
        wait_healthy(f"http://127.0.0.1:{port}{PING_PATH}", server)
        running = []
        with httpx.Client(base_url=base_url, timeout=10) as http:
            for ti, workload in prepared["steady"]:
                answer = http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY,
                                    headers={"Authorization": f"Bearer {workload}"})
                answer.raise_for_status()
                running.append(TI(str(ti.id), ti.dag_id, ti.run_id, ti.task_id, ti.map_index,
                                  answer.headers["Refreshed-API-Token"]))
            bound = []
            for ti, workload in prepared["bound"]:
                url = f"{base_url}/task-instances/{ti.id}/run"
                key, proof = bind(url, workload)  # type: ignore[misc]
                answer = http.patch(url, json=RUN_BODY, headers={
                    "Authorization": f"Bearer {workload}", "DPoP": proof})
                answer.raise_for_status()
                bound.append((TI(str(ti.id), ti.dag_id, ti.run_id, ti.task_id, ti.map_index,
                                 answer.headers["Refreshed-API-Token"]), key))
        queued = [TI(str(ti.id), ti.dag_id, ti.run_id, ti.task_id, ti.map_index, workload)
                  for ti, workload in prepared["lifecycles"]]
        yield Target(f"taskgate ({backend})", port, running, queued, bound=bound)


# Airflow ----------------------------------------------------------------------------------


@contextmanager
def airflow(n_running: int, n_queued: int) -> Iterator[Target]:
    """Airflow 3.3's Execution API as shipped (its default HS512 secret, SQLite)."""
    import airflow_reference

    with airflow_reference.airflow_reference(n_running, n_queued) as ref:
        yield Target("Airflow 3.3 (sqlite)", int(ref.base_url.rsplit(":", 1)[1]), ref.running,
                     ref.queued, variable_key=ref.variable_key, headers=ref.headers)
