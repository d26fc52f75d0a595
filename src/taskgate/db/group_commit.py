"""Group commit: on PostgreSQL, the same statement from the requests of one turn of the
event loop runs in one transaction.

Under load, many heartbeats reach the database in the same turn of the event loop. On
PostgreSQL each alone costs a pool checkout (with its ping: three round trips) and a
round trip of its own. ``GroupCommit.rowcount`` queues the call and, at the next turn,
sends everything queued for that statement on one connection in one transaction
(``DirectStatement.rowcounts``): one checkout and one transaction serve the whole batch
instead of one each (batch sizes and gains: docs/performance.md).

On the embedded SQLite database a write runs on the event loop's thread and never yields
(``taskgate.db.sqlite``), so nothing could join it: each call simply writes at once, since
suspending a request to wait for company costs more than the write.

Nothing is answered before it is committed: each caller gets its own row count once the
shared transaction has committed, or the error that rolled it back (every caller of that
transaction gets it, and nothing of it was written). A caller cancelled before its turn
is dropped from the batch; one cancelled later may still land, as any statement already
sent may. The batch is written by a task of its own, so one cancelled caller cannot
abandon the others' transaction; ``aclose`` waits for writes still queued or in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.db.direct import DirectStatement

_Call = tuple[Mapping[str, Any], "asyncio.Future[int]"]
T = TypeVar("T")


class GroupCommit:
    """Runs ``DirectStatement``s for concurrent callers, one transaction per turn."""

    def __init__(self, engine: AsyncEngine, *, gather: bool | None = None) -> None:
        self.engine = engine
        # Default: gather where a write goes over the network (see the module docstring).
        self.gathers = engine.dialect.name != "sqlite" if gather is None else gather
        self._queued: dict[DirectStatement, list[_Call]] = {}
        self._writes: set[asyncio.Task[None]] = set()

    async def rowcount(self, statement: DirectStatement, params: Mapping[str, Any]) -> int:
        """Run ``statement`` with ``params``; the number of rows it matched, once
        committed."""
        if not self.gathers:
            return (await statement.rowcounts(self.engine, [params]))[0]
        loop = asyncio.get_running_loop()
        matched: asyncio.Future[int] = loop.create_future()
        if not self._queued:
            loop.call_soon(self._flush)
        self._queued.setdefault(statement, []).append((params, matched))
        return await matched

    def _flush(self) -> None:
        queued, self._queued = self._queued, {}
        for statement, calls in queued.items():
            calls = [call for call in calls if not call[1].cancelled()]
            if calls:
                write = asyncio.get_running_loop().create_task(self._write(statement, calls))
                self._writes.add(write)
                write.add_done_callback(self._writes.discard)

    async def _write(self, statement: DirectStatement, calls: list[_Call]) -> None:
        if statement.lock_order is not None:
            # Stable: sets naming the same row keep their order.
            calls.sort(key=lambda call: call[0][statement.lock_order])
        await answer_all(
            [matched for _, matched in calls],
            statement.rowcounts(self.engine, [params for params, _ in calls]),
        )

    async def aclose(self) -> None:
        """Wait for the writes queued or in flight (before the engine is disposed)."""
        while self._queued or self._writes:
            if self._writes:
                await asyncio.gather(*self._writes, return_exceptions=True)
            else:
                await asyncio.sleep(0)  # queued this turn: the flush comes next turn


async def answer_all(callers: list[asyncio.Future[T]], write: Awaitable[list[T]]) -> None:
    """Run one shared ``write`` and answer each of its ``callers`` (in order) with its
    result, or every one with the error that failed it; a cancelled write cancels them."""
    try:
        results = await write
    except Exception as exc:  # noqa: BLE001 - whatever it is, every caller gets it
        for caller in callers:
            if not caller.done():
                caller.set_exception(exc)
    except BaseException:
        for caller in callers:
            caller.cancel()
        raise
    else:
        for caller, result in zip(callers, results, strict=True):
            if not caller.done():
                caller.set_result(result)
