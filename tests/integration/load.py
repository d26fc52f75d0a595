"""Simulated task workers for the load and fault tests.

Each worker loops over whole task-instance lifecycles against a real server: the
orchestrator side queues a TI through the control-plane services (in this process, on the
server's database), then the worker uses taskgate's own ``AsyncClient`` over HTTP:
``/run`` with the workload token, heartbeats paced like a real worker's, a variable read,
an XCom push and the final state (mostly success, some failed). Every call's outcome is
recorded; the tests decide which outcomes are acceptable.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
from sqlalchemy import select

from taskgate.client import AsyncClient, RetryPolicy
from taskgate.client.errors import ApiError, ServerUnavailable
from taskgate.db.models import TaskInstance
from taskgate.runtime import Runtime
from taskgate.services import control, variables
from tests.support.database import fresh_ti

DAG_ID = "soak"
TASK_ID = "work"
VARIABLE = ("soak-greeting", "hello from the soak")
FAILED_SHARE = 0.25  # lifecycles that end "failed" instead of "success"
RERUN_ATTEMPTS = 12  # /run sent again when it did not reach the server, with growing waits
# ride_out_back_pressure: a call answered "try again" is sent again after the server's
# Retry-After, up to this many times (see Worker._back_pressure).
BACK_PRESSURE_ATTEMPTS = 5
RETRY_AFTER = 1.0  # seconds: what the server's Retry-After says
OVERLOADED = "overloaded"  # admission control turned it away at the door, before any work
DATABASE_TIMEOUT = "database_timeout"  # the request's database deadline passed


def _try_again(exc: ApiError) -> bool:
    return exc.status == 503 and exc.reason in (OVERLOADED, DATABASE_TIMEOUT)


@dataclass(frozen=True)
class Pacing:
    """How a worker spaces its calls: ``beats`` heartbeats per lifecycle, each after a
    wait drawn from ``beat_interval`` (seconds, low and high)."""

    beats: int = 2
    beat_interval: tuple[float, float] = (0.5, 1.0)

    def wait(self, rng: random.Random) -> float:
        return rng.uniform(*self.beat_interval)


@dataclass(frozen=True)
class Lifecycle:
    """One finished lifecycle, as the worker saw it."""

    ti_id: uuid.UUID
    run_id: str
    state: str  # the final state the server accepted
    xcom: dict


@dataclass
class Tally:
    """What all workers saw: finished lifecycles, calls by route and outcome, failures."""

    lifecycles: list[Lifecycle] = field(default_factory=list)
    calls: Counter = field(default_factory=Counter)  # (call, outcome) -> count
    failures: list[str] = field(default_factory=list)  # one line per failed call
    slowest: float = 0.0  # seconds, the slowest answered call
    sent_again: int = 0  # calls answered "try again" and sent again (ride_out_back_pressure)

    @property
    def requests(self) -> int:
        return sum(self.calls.values())

    def record(self, call: str, outcome: str, elapsed: float) -> None:
        self.calls[(call, outcome)] += 1
        self.slowest = max(self.slowest, elapsed)

    def summary(self) -> str:
        by_outcome = Counter()
        for (_call, outcome), n in self.calls.items():
            by_outcome[outcome] += n
        return (
            f"{len(self.lifecycles)} lifecycles, {self.requests} requests "
            f"{dict(by_outcome)}, slowest call {self.slowest:.2f} s, "
            f"{len(self.failures)} failures"
            + (f", {self.sent_again} sent again after a 503" if self.sent_again else "")
        )


async def final_states(runtime: Runtime) -> dict[str, str]:
    """The state of each load TI as the database has it, by run id."""
    async with runtime.sessionmaker() as session:
        rows = await session.execute(
            select(TaskInstance.run_id, TaskInstance.state).where(TaskInstance.dag_id == DAG_ID)
        )
        return dict(rows.all())


async def prepare(runtime: Runtime) -> None:
    """The DAG and the variable every worker reads."""
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, DAG_ID)
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, *VARIABLE)


async def queue_ti(runtime: Runtime, run_id: str) -> tuple[uuid.UUID, str]:
    """A new run with one TI, queued: its id and workload token (what `taskgate runs
    create` and `taskgate ti queue` do)."""
    async with runtime.sessionmaker() as session:
        created = await control.create_run(session, DAG_ID, run_id, [TASK_ID])
        queued = await runtime.lifecycle.queue(created.task_instances[0].id)
    return queued.ti.id, queued.workload_token


class Worker:
    """One simulated worker process (its own client, host name and pid)."""

    def __init__(
        self,
        index: int,
        api_url: str,
        runtime: Runtime,
        tally: Tally,
        *,
        pacing: Pacing,
        retry: RetryPolicy,
        timeout: httpx.Timeout,
        rerun_unsent: bool = False,
        ride_out_back_pressure: bool = False,
    ) -> None:
        self.index = index
        self.rerun_unsent = rerun_unsent
        self.ride_out_back_pressure = ride_out_back_pressure
        self.runtime = runtime
        self.tally = tally
        self.pacing = pacing
        self.rng = random.Random(index)
        self.api = AsyncClient(api_url, retry=retry, timeout=timeout)
        self.host = {"hostname": f"soak-{index}", "pid": 10_000 + index}

    async def run_until(self, deadline: float) -> None:
        """Whole lifecycles until ``deadline`` (monotonic), at least one; the one under
        way finishes."""
        n = 0
        try:
            await asyncio.sleep(self.rng.uniform(0, self.pacing.beat_interval[1]))  # stagger
            while n == 0 or time.monotonic() < deadline:
                await self.lifecycle(f"w{self.index}-{n}")
                n += 1
        finally:
            await self.api.aclose()

    async def lifecycle(self, run_id: str) -> None:
        ti_id, workload = await queue_ti(self.runtime, run_id)
        self.api.token = workload
        if not await self._start(ti_id):
            return
        for _ in range(self.pacing.beats):
            await asyncio.sleep(self.pacing.wait(self.rng))
            if not await self._call("heartbeat", lambda: self.api.heartbeat(ti_id, **self.host)):
                return
        if not await self._call("variable", lambda: self.api.get_variable(VARIABLE[0])):
            return
        xcom = {"worker": self.index, "run": run_id}
        if not await self._call(
            "xcom", lambda: self.api.push_xcom(DAG_ID, run_id, TASK_ID, "return_value", xcom)
        ):
            return
        state = "failed" if self.rng.random() < FAILED_SHARE else "success"
        if await self._call("state", lambda: self.api.finish(ti_id, state)):
            self.tally.lifecycles.append(Lifecycle(ti_id, run_id, state, xcom))

    async def _start(self, ti_id: uuid.UUID) -> bool:
        """``/run``. The client never repeats it (the workload token is single-use). With
        ``rerun_unsent`` the worker sends it again after no answer when the request did not
        reach the server: the connection was refused, or (a keep-alive connection that a
        stopping server had just closed) the orchestrator still sees the TI queued."""
        started = time.monotonic()
        for attempt in range(RERUN_ATTEMPTS):
            try:
                await self.api.run(ti_id, unixname="soak", **self.host)
            except ServerUnavailable as exc:
                if await self._back_pressure(exc, ti_id):
                    await self._send_again("run", exc, started)
                    continue
                if self.rerun_unsent and exc.status is None and (
                    exc.reason == "ConnectError" or await self._still_queued(ti_id)
                ):
                    self.tally.record("run", f"unsent ({exc.reason})", time.monotonic() - started)
                    await asyncio.sleep(0.25 * (attempt + 1))
                    continue
                self._failed("run", exc, started)
                return False
            except ApiError as exc:
                self._failed("run", exc, started)
                return False
            self.tally.record("run", "ok", time.monotonic() - started)
            return True
        self.tally.failures.append(f"worker {self.index} run: not started after {RERUN_ATTEMPTS} attempts")
        return False

    async def _still_queued(self, ti_id: uuid.UUID) -> bool:
        return (await fresh_ti(self.runtime, ti_id)).state == "queued"

    async def _call(self, name: str, call: Callable[[], Awaitable[object]]) -> bool:
        started = time.monotonic()
        for attempt in range(BACK_PRESSURE_ATTEMPTS):
            try:
                await call()
            except ApiError as exc:
                if attempt + 1 < BACK_PRESSURE_ATTEMPTS and await self._back_pressure(exc):
                    await self._send_again(name, exc, started)
                    continue
                self._failed(name, exc, started)
                return False
            self.tally.record(name, "ok", time.monotonic() - started)
            return True
        return False  # not reached: the last attempt returns either way

    async def _back_pressure(self, exc: ApiError, run_of: uuid.UUID | None = None) -> bool:
        """Whether an answer is one a real worker rides out (``ride_out_back_pressure``):
        503 ``overloaded`` (turned away before any work), or 503 ``database_timeout`` (the
        database was late; the request was cancelled) on a call the client retries
        because it is idempotent. ``/run`` (``run_of``) is not: it is sent again only if
        the TI is still queued, so its workload token was not spent."""
        if not (self.ride_out_back_pressure and _try_again(exc)):
            return False
        if run_of is None or exc.reason == OVERLOADED:
            return True
        return await self._still_queued(run_of)

    async def _send_again(self, name: str, exc: ApiError, started: float) -> None:
        self.tally.record(name, f"503 {exc.reason}, sent again", time.monotonic() - started)
        self.tally.sent_again += 1
        await asyncio.sleep(self.rng.uniform(0.5, 1.0) * RETRY_AFTER)

    def _failed(self, name: str, exc: ApiError, started: float) -> None:
        elapsed = time.monotonic() - started
        self.tally.record(name, str(exc.status or exc.reason), elapsed)
        self.tally.failures.append(
            f"worker {self.index} {name}: {exc} ({exc.reason}) after {elapsed:.2f} s"
        )


async def drive(
    api_url: str,
    runtime: Runtime,
    *,
    workers: int,
    seconds: float,
    pacing: Pacing = Pacing(),
    retry: RetryPolicy,
    timeout: httpx.Timeout,
    tally: Tally | None = None,
    rerun_unsent: bool = False,
    ride_out_back_pressure: bool = False,
) -> Tally:
    """``workers`` workers doing lifecycles for ``seconds``; returns what they saw."""
    tally = tally if tally is not None else Tally()
    deadline = time.monotonic() + seconds
    crew = [
        Worker(i, api_url, runtime, tally, pacing=pacing, retry=retry, timeout=timeout,
               rerun_unsent=rerun_unsent, ride_out_back_pressure=ride_out_back_pressure)
        for i in range(workers)
    ]
    await asyncio.gather(*(w.run_until(deadline) for w in crew))
    return tally
