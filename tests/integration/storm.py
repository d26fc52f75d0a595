"""Load for the overload test, from a process of its own: one GET, over many HTTP/1.1
keep-alive connections, either as fast as answers come back (``capacity``, closed loop)
or paced at a fixed rate whatever the answers (``storm``, open loop), followed by a
closed-loop run in short windows that shows when throughput is back.

Usage: python -m tests.integration.storm URL PATH TOKEN capacity SECONDS CONNECTIONS
       python -m tests.integration.storm URL PATH TOKEN storm RATE SECONDS MAX_CONNECTIONS \
           CONNECTIONS_AFTER
Prints one JSON object. Traffic goes to the URL given (the test's server on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter, deque
from urllib.parse import urlsplit

WINDOW = 0.25  # seconds, for the recovery windows


class Connection(asyncio.Protocol):
    def __init__(self, load: Load) -> None:
        self.load = load
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.waiting = False  # for an answer

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.load.idle.append(self)

    def send(self) -> None:
        assert self.transport is not None
        self.waiting = True
        self.transport.write(self.load.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].split(b"\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            status = int(head[0].split()[1])
            outcome = str(status)
            if status >= 400:
                try:
                    outcome += " " + json.loads(body)["detail"]["reason"]
                except (ValueError, KeyError, TypeError):
                    pass
            self.waiting = False
            self.load.answered(self, outcome)

    def connection_lost(self, exc: Exception | None) -> None:
        # An idle connection the server closed (its keep-alive timeout) is no loss.
        if self.waiting:
            self.load.lost += 1
        if self in self.load.idle:
            self.load.idle.remove(self)


class Load:
    def __init__(self, url: str, path: str, token: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
        # Used in turn, longest idle first: with LIFO the connections at the bottom sat idle
        # until the server's keep-alive timeout closed them, now and then just as a request
        # was sent on one (counted lost, though the server never had it).
        self.idle: deque[Connection] = deque()
        self.connections = 0
        self.lost = 0  # connections closed while a request on them waited for its answer
        self.outcomes: Counter[str] = Counter()
        self.closed_loop = False
        self.windows: list[int] | None = None
        self.window_start = 0.0
        self.stopped = 0.0

    async def connect(self, n: int) -> None:
        loop = asyncio.get_running_loop()
        for _ in range(n):
            await loop.create_connection(lambda: Connection(self), self.host, self.port)
            self.connections += 1

    def answered(self, connection: Connection, outcome: str) -> None:
        self.outcomes[outcome] += 1
        if outcome == "200" and self.windows is not None:
            index = int((time.monotonic() - self.window_start) / WINDOW)
            if index < len(self.windows):
                self.windows[index] += 1
        if self.closed_loop:
            connection.send()
        else:
            self.idle.append(connection)

    async def capacity(self, seconds: float, connections: int) -> dict[str, object]:
        """Closed loop on ``connections`` of the idle connections."""
        self.closed_loop = True
        self.outcomes.clear()
        self.windows = [0] * int(seconds / WINDOW)
        self.window_start = time.monotonic()
        for _ in range(min(connections, len(self.idle))):
            self.idle.popleft().send()
        await asyncio.sleep(seconds)
        self.closed_loop = False
        await asyncio.sleep(0.5)  # answers in flight come back; connections go idle
        return {
            "rate": self.outcomes["200"] / seconds,
            "per_second_in_windows": [n / WINDOW for n in self.windows],
            "outcomes": dict(self.outcomes),
        }

    async def storm(self, rate: float, seconds: float, max_connections: int) -> dict[str, object]:
        self.outcomes.clear()
        started = time.monotonic()
        sent = unsent = 0
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) - sent - unsent
            for _ in range(max(due, 0)):
                if not self.idle and self.connections < max_connections:
                    await self.connect(1)
                if self.idle:
                    self.idle.popleft().send()
                    sent += 1
                else:
                    unsent += 1  # every connection waits for an answer
            await asyncio.sleep(0.002)
        self.stopped = time.monotonic()
        await asyncio.sleep(0.2)  # the last answers
        return {
            "offered_rate": sent / seconds,
            "sent": sent,
            "unsent": unsent,
            "outcomes": dict(self.outcomes),
            "connections": self.connections,
            "lost": self.lost,
        }


async def main(argv: list[str]) -> dict[str, object]:
    url, path, token, mode, *rest = argv
    load = Load(url, path, token)
    if mode == "capacity":
        seconds, connections = float(rest[0]), int(rest[1])
        await load.connect(connections)
        return {"capacity": await load.capacity(seconds, connections)}
    rate, seconds, connections, closed_loop = float(rest[0]), float(rest[1]), int(rest[2]), int(rest[3])
    await load.connect(closed_loop)
    storm = await load.storm(rate, seconds, connections)
    after = await load.capacity(3.0, closed_loop)
    after["starts_after_storm"] = load.window_start - load.stopped
    return {"storm": storm, "after": after}


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(main(sys.argv[1:]))))
