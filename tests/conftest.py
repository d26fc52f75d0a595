"""Shared fixtures: settings on a temporary data dir, a prepared runtime, in-process and
real (uvicorn on 127.0.0.1) servers, and a factory for queued task instances."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import update

from taskgate.api.app import create_app
from taskgate.db import migrate
from taskgate.db.models import TaskInstance
from taskgate.db.session import create_engine
from taskgate.runtime import Runtime
from taskgate.services import control
from taskgate.settings import Settings
from taskgate.tokens import TokenType
from tests.support.api import RUN_BODY, bearer
from tests.support.asgi_server import serving
from tests.support.browser import browser, browser_page  # noqa: F401  (fixtures, for every test)
from tests.support.database import postgres_admin
from tests.support.postgres_cluster import cluster  # noqa: F401  (a fixture, for every test)
from tests.support.reports import REPORTS

# Every test that touches the database runs on each backend: the embedded SQLite default
# and PostgreSQL (a fresh database per test on the server below).
BACKENDS = os.environ.get("TASKGATE_TEST_BACKENDS", "sqlite,postgresql").split(",")
POSTGRES_URL = os.environ.get(
    "TASKGATE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
# CI sets this: there, an unreachable PostgreSQL is a failure, not a skip.
REQUIRE_POSTGRES = os.environ.get("TASKGATE_TEST_REQUIRE_POSTGRES") == "1"
# TASKGATE_DB_FAST_PATHS=false runs the suite on the public paths (as CI's second run
# does); the tests of the fast paths themselves then have nothing to test.
FAST_PATHS = Settings().db_fast_paths


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if FAST_PATHS:
        return
    skip = pytest.mark.skip(reason="TASKGATE_DB_FAST_PATHS=false: a test of the fast paths")
    for item in items:
        if item.get_closest_marker("fast_paths"):
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for section, lines in REPORTS.items():
        terminalreporter.section(section)
        for line in lines:
            terminalreporter.write_line(line())


def _admin_dsn() -> str:
    return POSTGRES_URL.replace("postgresql+asyncpg://", "postgresql://", 1)


@pytest.fixture(scope="session")
def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used for the tests, or None when it can."""

    async def probe() -> None:
        conn = await asyncpg.connect(_admin_dsn(), timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"PostgreSQL not reachable at {POSTGRES_URL} ({exc}); set TASKGATE_TEST_POSTGRES_URL"
    return None


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, postgres_unreachable: str | None) -> Iterator[str | None]:
    """None for the embedded SQLite default; else the URL of a fresh, migrated database."""
    if request.param == "sqlite":
        yield None
        return
    if postgres_unreachable:
        if REQUIRE_POSTGRES:
            pytest.fail(postgres_unreachable)
        pytest.skip(postgres_unreachable)
    name = f"taskgate_test_{uuid.uuid4().hex[:12]}"
    url = POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"

    async def migrate_new() -> None:
        engine = create_engine(url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(postgres_admin(_admin_dsn(), f'CREATE DATABASE "{name}"'))
    asyncio.run(migrate_new())
    yield url
    asyncio.run(postgres_admin(_admin_dsn(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path, database_url: str | None) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url)


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
            queued = await self.runtime.lifecycle.queue(created.task_instances[-1].id)
        return TI(queued.ti.id, dag_id, run_id, task_id, queued.workload_token)

    async def running_row(self) -> TI:
        """A queued TI whose row is set to running, without /run (only the row matters)."""
        ti = await self.queued_ti()
        async with self.runtime.sessionmaker() as session:
            await session.execute(
                update(TaskInstance).where(TaskInstance.id == ti.id).values(state="running")
            )
            await session.commit()
        return ti

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
def live_server(settings: Settings, runtime: Runtime) -> Iterator[LiveServer]:
    """taskgate served by uvicorn on 127.0.0.1 in a background thread (its own loop and
    its own runtime on the test's database, prepared by the `runtime` fixture)."""
    server_runtime = Runtime.from_settings(settings)
    with serving(create_app(server_runtime), lifespan="on") as url:
        yield LiveServer(url, server_runtime)
