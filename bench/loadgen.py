"""A bounded HTTP/1.1 load generator for 127.0.0.1, on asyncio (uvloop) and httptools.

Each of ``concurrency`` connections runs a *scenario*: a coroutine that sends requests one
after another on its own keep-alive connection (a closed loop, like a worker that waits
for each answer). Requests are prepared bytes; responses are parsed by httptools, so the
generator spends little CPU per request and the server under test is what is measured.

Every request's latency is recorded; statuses the scenario did not expect count as errors.
A run stops at its deadline: requests in flight then are finished, none are started.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from array import array
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httptools


class Response:
    __slots__ = ("status", "headers")

    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[bytes, bytes] = {}


class _Protocol(asyncio.Protocol):
    """One keep-alive connection; one request in flight at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Response] | None = None
        self.response = Response()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(exc or ConnectionResetError("connection closed by the server"))

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        self.response.headers[name.lower()] = value

    def on_message_complete(self) -> None:
        self.response.status = self.parser.get_status_code()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(self.response)

    def _fail(self, exc: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(exc)

    async def request(self, raw: bytes) -> Response:
        self.response = Response()
        self.waiter = asyncio.get_running_loop().create_future()
        assert self.transport is not None
        self.transport.write(raw)
        return await self.waiter


def build_request(
    method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class RunStats:
    """What one run measured. Latencies are seconds."""

    seconds: float = 0.0
    latencies: array = field(default_factory=lambda: array("d"))
    errors: Counter = field(default_factory=Counter)
    units: int = 0  # scenario-defined units completed (e.g. whole lifecycles)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def units_per_second(self) -> float:
        return self.units / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    def median_latency(self) -> float:
        return statistics.median(self.latencies) if self.latencies else float("nan")


class Connection:
    """What a scenario drives: send a prepared request, get the parsed response."""

    def __init__(self, protocol: _Protocol, stats: RunStats, deadline: float) -> None:
        self._protocol = protocol
        self._stats = stats
        self.deadline = deadline

    @property
    def open(self) -> bool:
        return time.perf_counter() < self.deadline

    async def send(self, raw: bytes, *expected: int) -> Response | None:
        """Send ``raw``; None if the answer was not one of ``expected`` (counted as error)."""
        started = time.perf_counter()
        try:
            response = await self._protocol.request(raw)
        except (OSError, httptools.HttpParserError) as exc:
            self._stats.errors[type(exc).__name__] += 1
            raise
        self._stats.latencies.append(time.perf_counter() - started)
        if response.status not in expected:
            self._stats.errors[f"status {response.status}"] += 1
            return None
        return response

    def unit_done(self) -> None:
        self._stats.units += 1


Scenario = Callable[[Connection, int], Awaitable[None]]
"""``scenario(conn, index)``: send requests on ``conn`` while ``conn.open``; ``index`` is
the connection's number (0..concurrency-1), to pick its own task instance."""


async def run(
    port: int, scenario: Scenario, *, concurrency: int, seconds: float, timeout: float = 30.0
) -> RunStats:
    """Drive ``scenario`` on ``concurrency`` connections to 127.0.0.1:``port`` for
    ``seconds``. Bounded: a connection whose request takes longer than ``timeout`` is
    abandoned and counted as an error."""
    loop = asyncio.get_running_loop()
    stats = RunStats()
    protocols = [
        (await loop.create_connection(_Protocol, "127.0.0.1", port))[1]
        for _ in range(concurrency)
    ]
    started = time.perf_counter()
    deadline = started + seconds

    async def drive(index: int, protocol: _Protocol) -> None:
        try:
            await asyncio.wait_for(
                scenario(Connection(protocol, stats, deadline), index), seconds + timeout
            )
        except (OSError, httptools.HttpParserError):
            pass  # already counted by Connection.send
        except TimeoutError:
            stats.errors["timeout"] += 1

    try:
        await asyncio.gather(*(drive(i, p) for i, p in enumerate(protocols)))
    finally:
        stats.seconds = time.perf_counter() - started
        for protocol in protocols:
            if protocol.transport is not None:
                protocol.transport.close()
    return stats
