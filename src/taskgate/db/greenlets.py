"""SQLAlchemy's bridge from async to sync code, with its greenlets kept for reuse.

SQLAlchemy runs its synchronous internals (the pool's checkout and return, among others)
in a greenlet, and ``greenlet_spawn`` starts a new one for every call. A new greenlet
gets a fresh interpreter data stack, which the kernel maps, faults in and unmaps again
when the greenlet ends. Reusing them takes that cost off every call on the hot path
(docs/performance.md, "What made it fast").

``run_in_greenlet`` has the same contract as ``greenlet_spawn``: ``fn`` runs synchronously
and may wait for coroutines with SQLAlchemy's ``await_only``; its result or exception is
returned or raised. The greenlet that ran it then waits for the next call instead of
ending, so its stack stays mapped. Exceptions raised while ``fn`` waits (a cancelled
request) are thrown into ``fn`` at its ``await_only``, as ``greenlet_spawn`` does.

Idle greenlets are kept per thread, at most ``KEEP`` of them. A greenlet returns to its
parent, the greenlet of the caller that made it (asyncio runs every task in the thread's
main greenlet), so one is reused only by callers in that same greenlet.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from greenlet import getcurrent, greenlet

_T = TypeVar("_T")

KEEP = 64


class _Outcome:
    """What a call ended with: its result, or the exception it raised."""

    __slots__ = ("error", "value")

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error


class _Worker(greenlet):  # type: ignore[misc]
    # SQLAlchemy's await_only switches to the parent only from greenlets marked so.
    __sqlalchemy_greenlet_provider__ = True

    def __init__(self, driver: greenlet) -> None:
        super().__init__(self._serve, driver)

    def _serve(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        while True:
            try:
                outcome = _Outcome(fn(*args))
            except BaseException as exc:  # noqa: BLE001 -- the caller raises it
                outcome = _Outcome(error=exc)
            fn = args = None  # type: ignore[assignment]  # hold nothing while idle
            fn, args = self.parent.switch(outcome)


_local = threading.local()


async def run_in_greenlet(fn: Callable[..., _T], *args: Any) -> _T:
    """``fn(*args)`` in a greenlet that may ``await_only``; like ``greenlet_spawn``."""
    driver = getcurrent()
    idle: list[_Worker] = _local.__dict__.setdefault("idle", [])
    worker = idle.pop() if idle else None
    if worker is None or worker.parent is not driver:
        worker = _Worker(driver)
    worker.gr_context = driver.gr_context  # fn sees the caller's context variables
    result = worker.switch(fn, args)
    try:
        while not isinstance(result, _Outcome):
            try:
                value = await result
            except BaseException:  # noqa: BLE001 -- thrown into fn, as greenlet_spawn does
                result = worker.throw(*sys.exc_info())
            else:
                result = worker.switch(value)
    finally:
        # A worker left waiting inside fn (the loop above itself failed) is not reused.
        if isinstance(result, _Outcome) and len(idle) < KEEP:
            worker.gr_context = None
            idle.append(worker)
    if result.error is not None:
        error, result.error = result.error, None
        raise error
    return result.value  # type: ignore[no-any-return]
