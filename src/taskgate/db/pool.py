"""Connection pools: one that serves waiting requests first come, first served, and
both pools timed (how long each checkout took: waiting, connecting, the liveness check).

SQLAlchemy's asyncio pool lets a newly arriving request take a connection that was just
returned, ahead of requests already waiting for it; a waiter that loses the race goes back
to the end of the line. Under load (every request of a process shares SQLite's one
connection) some requests lost again and again: their waits ran far past the median's,
some up to the pool timeout (503). Here a returned connection
goes straight to the longest-waiting request, and a newcomer only takes a free connection
when nobody is waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_only
from sqlalchemy.util.queue import AsyncAdaptedQueue, Empty


class FairQueue(AsyncAdaptedQueue):
    """The pool's queue of idle connections, with a line of waiting requests."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo)
        self._waiters: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():  # a waiter that gave up (timeout, cancelled) is skipped
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        # The pool holds at most as many connections as it has room for: never blocks.
        self.put_nowait(item)

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        self._drop_abandoned()
        if not self._waiters:
            try:
                return super().get_nowait()
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
    _queue_class = FairQueue
