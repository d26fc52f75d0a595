"""The fault matrix: each way the database fails, as an operator meets it, against a real
``taskgate serve``.

PostgreSQL runs as a throwaway cluster (own data directory and port, so it may be
restarted and reconfigured) behind a fault-injecting TCP proxy; SQLite lives on a small
tmpfs of its own. For each fault, while it lasts and until the server has recovered:

- probes on one keep-alive connection (heartbeat, variable read, XCom push, health):
  every answer is a success or 503 with ``Retry-After`` and a database reason, within
  2 s, and the connection is never dropped;
- three state changes are attempted meanwhile, as a worker would (the client's retries,
  ``/run`` sent again after a 503): afterwards each is applied exactly once (a ``/run``
  whose answer was lost landed once, and its resend is told 409) — never lost, never
  twice;
- after the fault ends, heartbeats, reads and ``/execution/health`` succeed again within
  2 s.

The table it prints (fault, answers seen, slowest answer, recovery time) is the one in
docs/operations.md.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from taskgate.client import AsyncClient, RetryPolicy
from taskgate.client.errors import ApiError
from taskgate.db import migrate
from taskgate.db.models import TaskReschedule, UsedWorkloadToken
from taskgate.runtime import Runtime
from taskgate.services import control, variables
from taskgate.settings import Settings
from taskgate.wire.task_instances import TIRescheduleStatePayload
from tests.support.api import BEAT_BODY, RUN_BODY, bearer, gauge
from tests.support.database import fresh_ti, postgres_admin
from tests.support.fault_proxy import FaultProxy
from tests.support.keep_alive import Answer, ConnectionDropped, KeepAliveConnection
from tests.support.postgres_cluster import Cluster
from tests.support.processes import (
    ServeProcess,
    free_port,
    serve_env,
    server_output,
    start_serve,
)
from tests.support.reports import report

pytestmark = pytest.mark.integration

BOUND = 2.0  # seconds: every answer, and recovery after the fault ends
HOLD = 3.0  # seconds a fault lasts
REASONS = {"database_unavailable", "database_timeout", "database_read_only", "database_full"}
DAG = "faults"
VARIABLE = ("fault-greeting", "hello")


@dataclass
class Row:
    """One line of the printed table."""

    backend: str
    fault: str
    answers: Counter = field(default_factory=Counter)
    # 503s of the routes (health's come from its own memory of faults: not counted again)
    route_faults: Counter = field(default_factory=Counter)
    slowest: float = 0.0
    recovery: float | None = None
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        seen = ", ".join(f"{k} x{n}" for k, n in sorted(self.answers.items()))
        recovery = "-" if self.recovery is None else f"{self.recovery:.2f} s"
        return f"| {self.backend} | {self.fault} | {seen} | {self.slowest:.2f} s | {recovery} |"


HEADER = (
    "| backend | fault | answers seen | slowest answer | recovery |",
    "|---|---|---|---|---|",
)


@dataclass
class Setup:
    """A running ``taskgate serve`` on the faulty database, and the test's own way in."""

    backend: str
    url: str  # the server
    runtime: Runtime  # the test's own, straight to the database (not through faults)
    process: ServeProcess
    proxy: FaultProxy | None = None
    cluster: Cluster | None = None
    data_dir: Path | None = None


# -- what each case does ---------------------------------------------------------------


async def queued(setup: Setup) -> tuple[uuid.UUID, str]:
    async with setup.runtime.sessionmaker() as session:
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        created = await control.create_run(session, DAG, run_id, ["task"])
    queued_ti = await setup.runtime.lifecycle.queue(created.task_instances[0].id)
    return queued_ti.ti.id, queued_ti.workload_token


async def running(setup: Setup, http: httpx.AsyncClient) -> tuple[uuid.UUID, str]:
    ti_id, workload = await queued(setup)
    answer = await http.patch(f"/task-instances/{ti_id}/run", json=RUN_BODY, headers=bearer(workload))
    assert answer.status_code == 200, answer.text
    return ti_id, answer.headers["Refreshed-API-Token"]


@dataclass
class Changes:
    """State changes a worker attempts during the fault, and what it was told."""

    succeed: uuid.UUID
    reschedule: uuid.UUID
    start: uuid.UUID
    start_answers: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


async def attempt_changes(setup: Setup, http: httpx.AsyncClient, changes: Changes,
                          tokens: dict[uuid.UUID, str], workload: str) -> None:
    retry = RetryPolicy(attempts=100, first_delay=0.1, max_delay=1.0, deadline=40)

    async def report(ti_id: uuid.UUID, call: Callable[[AsyncClient], Awaitable[None]]) -> None:
        async with AsyncClient(f"{setup.url}/execution", token=tokens[ti_id], retry=retry,
                               timeout=5) as client:
            try:
                await call(client)
            except ApiError as exc:
                changes.errors.append(f"{ti_id}: {exc!r}")

    async def start() -> None:
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                answer = await http.patch(f"/task-instances/{changes.start}/run", json=RUN_BODY,
                                          headers=bearer(workload))
            except httpx.TransportError as exc:
                changes.errors.append(f"/run: {exc!r}")
                return
            changes.start_answers.append(answer.status_code)
            if answer.status_code != 503:
                return
            await asyncio.sleep(0.2)  # a 503 wrote nothing: the same token may start it

    now = datetime.now(UTC)
    later = TIRescheduleStatePayload(reschedule_date=now + timedelta(minutes=5), end_date=now)
    await asyncio.gather(
        report(changes.succeed, lambda c: c.finish(changes.succeed, "success")),
        report(changes.reschedule, lambda c: c.report_state(changes.reschedule, later)),
        start(),
    )


async def check_changes(setup: Setup, changes: Changes) -> list[str]:
    problems = list(changes.errors)
    succeeded = await fresh_ti(setup.runtime, changes.succeed)
    if succeeded.state != "success":
        problems.append(f"success report lost: {succeeded.state}")
    rescheduled = await fresh_ti(setup.runtime, changes.reschedule)
    async with setup.runtime.sessionmaker() as session:
        reschedules = await session.scalar(
            select(func.count()).where(TaskReschedule.ti_id == changes.reschedule)
        )
        spent = await session.scalar(
            select(func.count()).where(UsedWorkloadToken.ti_id == changes.start)
        )
    if (rescheduled.state, reschedules) != ("up_for_reschedule", 1):
        problems.append(f"reschedule: state {rescheduled.state}, {reschedules} rows (want 1)")
    started = await fresh_ti(setup.runtime, changes.start)
    last = changes.start_answers[-1] if changes.start_answers else None
    # 200: started. 409 after a 503: the first /run landed as its answer was cut off.
    told_right = last == 200 or (last == 409 and 503 in changes.start_answers)
    if not ((started.state, started.try_number, spent) == ("running", 1, 1) and told_right):
        problems.append(
            f"/run answered {changes.start_answers}: TI {started.state}, try "
            f"{started.try_number}, {spent} spent tokens"
        )
    return problems


class Prober:
    """Requests on one keep-alive connection, each judged as it comes back."""

    def __init__(self, setup: Setup, row: Row, connection: KeepAliveConnection,
                 beat: tuple[uuid.UUID, str], xcom_bytes: int) -> None:
        self.setup, self.row, self.connection = setup, row, connection
        self.ti_id, self.token = beat
        self.xcom = "x" * xcom_bytes
        self.pushed = 0

    async def _send(self, name: str) -> Answer:
        auth = bearer(self.token)
        if name == "heartbeat":
            return await self.connection.request(
                "PUT", f"/execution/task-instances/{self.ti_id}/heartbeat", headers=auth,
                json_body=BEAT_BODY)
        if name == "variable":
            return await self.connection.request(
                "GET", f"/execution/variables/{VARIABLE[0]}", headers=auth)
        if name == "xcom":
            self.pushed += 1
            ti = await fresh_ti(self.setup.runtime, self.ti_id) if self.pushed == 1 else None
            if ti is not None:
                self._xcom_path = f"/execution/xcoms/{DAG}/{ti.run_id}/task"
            return await self.connection.request(
                "POST", f"{self._xcom_path}/k{self.pushed}", headers=auth, json_body=self.xcom)
        return await self.connection.request("GET", "/execution/health")

    async def round(self) -> dict[str, Answer]:
        answers = {}
        for name in ("heartbeat", "variable", "xcom", "health"):
            try:
                answer = await self._send(name)
            except ConnectionDropped as exc:
                self.row.problems.append(f"keep-alive connection dropped: {exc}")
                raise
            except TimeoutError:
                self.row.problems.append(f"{name}: no answer within 10 s")
                raise
            self._judge(name, answer)
            answers[name] = answer
        return answers

    def _judge(self, name: str, answer: Answer) -> None:
        self.row.slowest = max(self.row.slowest, answer.elapsed)
        if answer.elapsed >= BOUND:
            self.row.problems.append(f"{name}: answered after {answer.elapsed:.2f} s")
        if answer.status < 300:
            self.row.answers[str(answer.status)] += 1
            return
        # Health names the fault itself; cut off by the deadline, it answers as any route.
        reason = answer.reason or answer.json().get("reason")
        self.row.answers[f"{answer.status} {reason}"] += 1
        if name != "health":
            self.row.route_faults[reason] += 1
        if answer.status != 503 or reason not in REASONS or "retry-after" not in answer.headers:
            self.row.problems.append(f"{name}: {answer.status} {answer.body[:200]!r}")


async def run_case(setup: Setup, fault: str,
                   inject: Callable[[Setup], AbstractAsyncContextManager[Awaitable[object]]],
                   *, xcom_bytes: int = 64) -> Row:
    row = Row(setup.backend, fault)
    report("fault matrix", row.line, header=HEADER)  # the row is read when the run ends
    async with httpx.AsyncClient(base_url=f"{setup.url}/execution", timeout=10) as http:
        beat = await running(setup, http)
        succeed, reschedule = await running(setup, http), await running(setup, http)
        start, workload = await queued(setup)
        changes = Changes(succeed[0], reschedule[0], start)
        tokens = {succeed[0]: succeed[1], reschedule[0]: reschedule[1]}
        host, port = setup.url.removeprefix("http://").split(":")
        async with KeepAliveConnection(host, int(port)) as connection:
            prober = Prober(setup, row, connection, beat, xcom_bytes)
            await prober.round()  # healthy first
            row.answers.clear()
            row.route_faults.clear()
            try:
                async with inject(setup) as held:
                    attempts = asyncio.create_task(
                        attempt_changes(setup, http, changes, tokens, workload))
                    held_task = asyncio.ensure_future(held)
                    while not held_task.done():
                        await prober.round()
                        await asyncio.sleep(0.05)
                    await held_task
                ended = time.monotonic()
                while True:  # recovery: every probe succeeds in one round
                    answers = await prober.round()
                    if all(a.status < 300 for a in answers.values()):
                        row.recovery = time.monotonic() - ended
                        break
                    if time.monotonic() - ended > 15:
                        row.problems.append("not recovered 15 s after the fault ended")
                        break
                    await asyncio.sleep(0.05)
            except (ConnectionDropped, TimeoutError):
                pass
        if row.recovery is not None and row.recovery >= BOUND:
            row.problems.append(f"recovered after {row.recovery:.2f} s")
        try:
            await asyncio.wait_for(attempts, 45)
        except TimeoutError:
            row.problems.append("state changes still retrying 45 s after the fault")
        else:
            row.problems += await check_changes(setup, changes)
    return row


def held_for(seconds: float = HOLD) -> Awaitable[None]:
    return asyncio.sleep(seconds)


def assert_no_problems(setup: Setup, rows: list[Row]) -> None:
    problems = [f"{row.fault}: {p}" for row in rows for p in row.problems]
    # Every fault a route answered is counted by reason (the state changes add their
    # own), and the checkouts were timed.
    metrics = httpx.get(f"{setup.url}/metrics", timeout=10).text
    for reason in REASONS:
        seen = sum(row.route_faults[reason] for row in rows)
        counted = gauge(metrics, "taskgate_database_faults_total", reason=reason)
        if counted < seen:
            problems.append(f"metrics: {counted:.0f} {reason} counted, probes saw {seen}")
    if gauge(metrics, "taskgate_db_checkout_seconds_count") == 0:
        problems.append("metrics: no checkout timed")
    assert not problems, "\n".join(problems) + "\n" + server_output(setup.process)[-3000:]


# -- PostgreSQL --------------------------------------------------------------------------

ROLE = "taskgate"


@asynccontextmanager
async def tcp_refused(setup: Setup) -> AsyncIterator[Awaitable[object]]:
    assert setup.proxy is not None
    setup.proxy.refuse()
    yield held_for()
    setup.proxy.heal()


async def _terminate_sessions(setup: Setup) -> None:
    assert setup.cluster is not None
    await postgres_admin(
        setup.cluster.admin_dsn,
        f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}'",
    )


def reconfigured(on: str, off: str, *, end_sessions_after: bool = False
                 ) -> Callable[[Setup], AbstractAsyncContextManager[Awaitable[object]]]:
    """A fault made by PostgreSQL's own configuration: ``on`` (then the server's
    sessions are ended, so that new ones meet it) for the hold, then ``off`` (and, with
    ``end_sessions_after``, the sessions of the faulty configuration end too)."""

    @asynccontextmanager
    async def fault(setup: Setup) -> AsyncIterator[Awaitable[object]]:
        assert setup.cluster is not None
        await postgres_admin(setup.cluster.admin_dsn, on)
        await _terminate_sessions(setup)
        yield held_for()
        await postgres_admin(setup.cluster.admin_dsn, off)
        if end_sessions_after:
            await _terminate_sessions(setup)

    return fault


not_accepting = reconfigured(f"ALTER DATABASE {ROLE} ALLOW_CONNECTIONS false",
                             f"ALTER DATABASE {ROLE} ALLOW_CONNECTIONS true")
too_many_connections = reconfigured(f"ALTER ROLE {ROLE} CONNECTION LIMIT 0",
                                    f"ALTER ROLE {ROLE} CONNECTION LIMIT -1")
# New sessions read-only, as on a standby; the failover back ends the old ones.
read_only = reconfigured(f"ALTER DATABASE {ROLE} SET default_transaction_read_only = on",
                         f"ALTER DATABASE {ROLE} RESET default_transaction_read_only",
                         end_sessions_after=True)


@asynccontextmanager
async def restarted(setup: Setup) -> AsyncIterator[Awaitable[object]]:
    assert setup.cluster is not None
    yield asyncio.to_thread(setup.cluster.restart)  # shutting down, then starting up


@asynccontextmanager
async def stall_at_connect(setup: Setup) -> AsyncIterator[Awaitable[object]]:
    assert setup.proxy is not None
    setup.proxy.stall(established=False)
    setup.proxy.reset_established()  # pooled connections die; new ones hang
    yield held_for()
    setup.proxy.heal()


@asynccontextmanager
async def stall_everything(setup: Setup) -> AsyncIterator[Awaitable[object]]:
    assert setup.proxy is not None
    setup.proxy.stall(established=True)  # queries in flight and new connections hang
    yield held_for()
    setup.proxy.heal()


@asynccontextmanager
async def lock_held(setup: Setup) -> AsyncIterator[Awaitable[object]]:
    assert setup.cluster is not None
    import asyncpg

    conn = await asyncpg.connect(setup.cluster.admin_dsn.replace("template1", ROLE))
    tx = conn.transaction()
    await tx.start()
    await conn.execute("LOCK TABLE task_instances IN ACCESS EXCLUSIVE MODE")
    try:
        yield held_for()
    finally:
        await tx.rollback()
        await conn.close()


async def _prepare(runtime: Runtime) -> None:
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, DAG)
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, *VARIABLE)


async def test_postgresql_fault_matrix(cluster: Cluster, tmp_path: Path) -> None:
    await postgres_admin(cluster.admin_dsn, f"CREATE ROLE {ROLE} LOGIN")
    await postgres_admin(cluster.admin_dsn, f"CREATE DATABASE {ROLE} OWNER {ROLE}")
    direct = Settings(data_dir=tmp_path, database_url=cluster.url(ROLE, ROLE))
    runtime = Runtime.from_settings(direct)
    await migrate.upgrade(runtime.engine)
    await _prepare(runtime)
    port = free_port()
    with FaultProxy(cluster.port) as proxy:
        env = serve_env(direct)
        env["TASKGATE_DATABASE_URL"] = cluster.url(ROLE, ROLE, port=proxy.port)
        # Below the request deadline, so that PostgreSQL's own statement timeout is seen.
        env["TASKGATE_DB_STATEMENT_TIMEOUT"] = "1"
        process = start_serve(env, port)
        setup = Setup("postgresql", f"http://127.0.0.1:{port}", runtime, process, proxy, cluster)
        try:
            rows = [
                await run_case(setup, "TCP connection refused", tcp_refused),
                await run_case(setup, "database not accepting connections", not_accepting),
                await run_case(setup, "too many connections", too_many_connections),
                await run_case(setup, "server restart (shutting down, starting up)", restarted),
                await run_case(setup, "network stall at connect", stall_at_connect),
                await run_case(setup, "network stall mid-query", stall_everything),
                await run_case(setup, "lock held past the statement timeout", lock_held),
                await run_case(setup, "read-only (a standby)", read_only),
            ]
            assert_no_problems(setup, rows)
        finally:
            process.terminate()
            process.wait(timeout=30)
            await runtime.aclose()


# -- SQLite ------------------------------------------------------------------------------

LOCK_HOLDER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], timeout=10, isolation_level=None)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("ROLLBACK")
"""


@asynccontextmanager
async def locked_by_another_process(setup: Setup) -> AsyncIterator[Awaitable[object]]:
    assert setup.data_dir is not None
    holder = await asyncio.create_subprocess_exec(
        sys.executable, "-c", LOCK_HOLDER, str(setup.data_dir / "taskgate.db"), str(HOLD),
        stdout=asyncio.subprocess.PIPE,
    )
    assert holder.stdout is not None
    assert (await holder.stdout.readline()).strip() == b"locked"
    yield holder.wait()


@asynccontextmanager
async def out_of_space(setup: Setup) -> AsyncIterator[Awaitable[object]]:
    assert setup.data_dir is not None
    filler = setup.data_dir / "filler"
    # Unbuffered: a buffer holding what did not fit would fail again when the file closes.
    with open(filler, "wb", buffering=0) as f:  # noqa: ASYNC230 - a local tmpfs
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass  # ENOSPC: the disk is full
    yield held_for()
    filler.unlink()


@pytest.fixture
def small_disk() -> Iterator[Path]:
    """A 64 MB tmpfs of its own: a disk that can fill up."""
    mount = Path(tempfile.mkdtemp(prefix="taskgate-disk-"))
    try:
        result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)
        shutil.rmtree(mount, ignore_errors=True)


async def test_sqlite_fault_matrix(small_disk: Path) -> None:
    settings = Settings(data_dir=small_disk)
    runtime = Runtime.from_settings(settings)
    await runtime.prepare_database()
    await _prepare(runtime)
    port = free_port()
    process = start_serve(serve_env(settings), port)
    setup = Setup("sqlite", f"http://127.0.0.1:{port}", runtime, process, data_dir=small_disk)
    try:
        rows = [
            await run_case(setup, "database locked by another process", locked_by_another_process),
            await run_case(setup, "out of space", out_of_space, xcom_bytes=256 * 1024),
        ]
        assert_no_problems(setup, rows)
    finally:
        process.terminate()
        process.wait(timeout=30)
        await runtime.aclose()
        os.sync()
