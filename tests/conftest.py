"""Shared fixtures: settings on a temporary data dir, a prepared runtime, in-process and
real (uvicorn on 127.0.0.1) servers, and a factory for queued task instances."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.services import control
from taskgate.settings import Settings
from taskgate.tokens import TokenType
from tests.helpers import RUN_BODY, bearer


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir)


@pytest.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    rt = Runtime.from_settings(settings)
    await rt.prepare_database()
    yield rt
    await rt.aclose()


@pytest.fixture
async def client(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in-process (ASGI transport): every security layer runs."""
    app = create_app(runtime)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://taskgate") as c:
        yield c


@dataclass
class TI:
    id: uuid.UUID
    dag_id: str
    run_id: str
    task_id: str
    workload_token: str


class Factory:
    """Creates DAGs, runs and queued TIs through the control-plane services."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def queued_ti(
        self, dag_id: str = "dag", task_id: str = "task", *, team: str | None = None,
        max_tries: int = 0, run_id: str | None = None, map_index: int = -1,
    ) -> TI:
        """A queued TI in a new run; with ``map_index`` >= 0, one TI of a task mapped over
        ``map_index`` + 1 values."""
        async with self.runtime.sessionmaker() as session:
            await control.add_dag(session, dag_id, team=team)
            run_id = run_id or f"run-{uuid.uuid4().hex[:8]}"
            mapped = {task_id: map_index + 1} if map_index >= 0 else None
            created = await control.create_run(
                session, dag_id, run_id, [task_id], max_tries=max_tries, mapped=mapped
            )
            queued = await control.queue(
                session, created.task_instances[-1].id, self.runtime.require_issuer()
            )
        return TI(queued.ti.id, dag_id, run_id, task_id, queued.workload_token)

    async def running_ti(self, client: httpx.AsyncClient, **kwargs: object) -> tuple[TI, str]:
        """A TI started through /run; returns it with its execution token."""
        ti = await self.queued_ti(**kwargs)  # type: ignore[arg-type]
        response = await client.patch(
            f"/execution/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(ti.workload_token)
        )
        assert response.status_code == 200, response.text
        return ti, response.headers["Refreshed-API-Token"]

    def token(self, ti_id: uuid.UUID, token_type: TokenType = TokenType.EXECUTION, **kw: int) -> str:
        return self.runtime.require_issuer().issue(ti_id, token_type, **kw)


@pytest.fixture
def factory(runtime: Runtime) -> Factory:
    return Factory(runtime)


@dataclass
class LiveServer:
    url: str  # http://127.0.0.1:<port>
    runtime: Runtime


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """taskgate served by uvicorn on 127.0.0.1 in a background thread (its own loop and
    its own runtime on the test's database)."""
    server_runtime = Runtime.from_settings(settings)
    app = create_app(server_runtime)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("live server did not start")
        time.sleep(0.02)
    yield LiveServer(f"http://127.0.0.1:{port}", server_runtime)
    server.should_exit = True
    thread.join(timeout=10)
    sock.close()
