"""Connection pools: one that serves waiting requests first come, first served, and
both pools timed (how long each checkout took: waiting, connecting, the liveness check).

SQLAlchemy's asyncio pool lets a newly arriving request take a connection that was just
returned, ahead of requests already waiting for it; a waiter that loses the race goes back
to the end of the line. Under load (every request of a process shares SQLite's one
connection) some requests lost again and again: their waits ran far past the median's,
some up to the pool timeout (503). Here a returned connection
goes straight to the longest-waiting request, and a newcomer only takes a free connection
when nobody is waiting.

The fair pool also keeps overflow connections (those past ``pool_size``) open while they
are still being used now and then, instead of closing each one the moment it comes back
to a full pool. Requests that arrive in waves (every read waking when its read-audit
record commits) otherwise closed and reopened the overflow connections on every wave:
hundreds of new PostgreSQL sessions a second, each with its TLS negotiation and
authentication, slowed every request of the process. Idle connections are reused most
recently returned first, so under a steady load the same few stay busy; one that stayed
idle longer than ``overflow_idle_seconds`` is closed when another connection comes back.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_only
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty, Full


class FairQueue(AsyncAdaptedQueue):
    """The pool's idle connections, most recently returned first, with a line of waiting
    requests. ``maxsize`` is the pool size; ``capacity`` (at least that) is how many idle
    connections it holds before a returned one is refused (and closed by the pool)."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self.capacity = maxsize
        self._idle: deque[tuple[Any, float]] = deque()  # (connection, idle since), newest last
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def qsize(self) -> int:
        return len(self._idle)

    def empty(self) -> bool:
        return not self._idle

    def full(self) -> bool:
        return 0 < self.capacity <= len(self._idle)

    def put_nowait(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter that gave up (timeout, cancelled) is skipped
                waiter.set_result(item)
                return
        if self.full():
            raise Full()
        self._idle.append((item, time.monotonic()))

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        # The pool holds at most as many connections as it has room for: never blocks.
        self.put_nowait(item)

    def get_nowait(self) -> Any:
        if not self._idle:
            raise Empty()
        return self._idle.pop()[0]

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self._drop_abandoned()
        if not self._waiters:
            try:
                return self.get_nowait()
            except Empty:
                if not block:
                    raise
        elif not block:
            raise Empty()
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await_only(asyncio.wait((waiter,), timeout=timeout))
        except BaseException:
            self._give_up(waiter)
            raise
        if waiter.done():
            return waiter.result()
        self._give_up(waiter)
        raise Empty()

    def take_idle_since(self, before: float, keep: int) -> list[Any]:
        """Remove the connections idle since before ``before`` (``time.monotonic()``)
        beyond the ``keep`` most recently returned, and give them to the caller to close."""
        taken = []
        while len(self._idle) > keep and self._idle[0][1] < before:
            taken.append(self._idle.popleft()[0])
        return taken

    def _give_up(self, waiter: asyncio.Future[Any]) -> None:
        if waiter.done() and not waiter.cancelled():
            self.put_nowait(waiter.result())  # handed over as we left: pass it on
        else:
            waiter.cancel()

    def _drop_abandoned(self) -> None:
        while self._waiters and self._waiters[0].done():
            self._waiters.popleft()


class TimedQueuePool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio pool, reporting how long each checkout took to
    ``on_checkout`` (the server's metrics)."""

    on_checkout: Callable[[float], None] | None = None

    def connect(self) -> Any:
        started = time.perf_counter()
        try:
            return super().connect()
        finally:
            if self.on_checkout is not None:
                self.on_checkout(time.perf_counter() - started)


class FairAsyncQueuePool(TimedQueuePool):
    """Waiters served in order (``FairQueue``); overflow connections kept open until idle
    for ``overflow_idle_seconds`` (0: closed on return, as SQLAlchemy's pool does)."""

    _queue_class = FairQueue
    _pool: FairQueue

    def __init__(self, creator: Any, pool_size: int = 5, max_overflow: int = 10,
                 overflow_idle_seconds: float = 30.0, **kw: Any) -> None:
        super().__init__(creator, pool_size=pool_size, max_overflow=max_overflow, **kw)
        self.overflow_idle_seconds = overflow_idle_seconds
        self._pool.capacity = pool_size + max(max_overflow, 0)

    def _do_return_conn(self, record: Any) -> None:
        super()._do_return_conn(record)
        before = time.monotonic() - self.overflow_idle_seconds
        for idle in self._pool.take_idle_since(before, keep=self._pool.maxsize):
            try:
                idle.close()
            finally:
                self._dec_overflow()

    def recreate(self) -> FairAsyncQueuePool:
        pool = super().recreate()
        pool.overflow_idle_seconds = self.overflow_idle_seconds
        pool._pool.capacity = self._pool.capacity
        return pool  # type: ignore[return-value]
