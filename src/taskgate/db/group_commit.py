"""Group commit: while one write of a statement is in flight, the next callers wait and
then go together, in one transaction.

A caller that finds nothing of its statement in flight writes at once, in its own task,
exactly as if there were no batching. On SQLite that write runs on the event loop's
thread without ever yielding (``taskgate.db.sqlite``), so nothing can queue behind it
and a heartbeat costs no more than the statement. Where a write does wait (a round trip
to PostgreSQL, another process holding SQLite's lock), the callers arriving meanwhile
queue; when it ends, everything queued goes as one batch (``DirectStatement.rowcounts``:
one connection, one transaction), and so on while callers keep coming. Under load on
PostgreSQL that turns many checkouts, pings and round trips into one checkout and a
round trip per statement.

Measured on this project's heartbeat: suspending a request and resuming it costs about
as much as the statement itself, which is why a lone caller does not wait for company.

Nothing is answered before it is committed: each caller gets its own row count once its
transaction has committed, or the error that rolled it back (every caller of that
transaction gets it, and nothing of it was written). A queued caller cancelled before
its batch is sent is dropped from it; one cancelled later may still land, as any
statement already sent may. Batches are written by a task of their own, so a cancelled
caller cannot abandon the others' transaction; ``aclose`` waits for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.db.direct import DirectStatement

_Call = tuple[Mapping[str, Any], "asyncio.Future[int]"]


class GroupCommit:
    """Runs ``DirectStatement``s for concurrent callers, batching those that would wait."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        # A statement is a key while a write of it is in flight; its value is the callers
        # queued behind that write.
        self._queued: dict[DirectStatement, list[_Call]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    async def rowcount(self, statement: DirectStatement, params: Mapping[str, Any]) -> int:
        """Run ``statement`` with ``params``; the number of rows it matched, once
        committed."""
        queue = self._queued.get(statement)
        if queue is not None:
            matched: asyncio.Future[int] = asyncio.get_running_loop().create_future()
            queue.append((params, matched))
            return await matched
        self._queued[statement] = []
        try:
            return (await statement.rowcounts(self.engine, [params]))[0]
        finally:
            self._next_batch(statement)

    def _next_batch(self, statement: DirectStatement) -> None:
        """After a write of ``statement``: send what queued behind it, or stand down."""
        calls = [call for call in self._queued.pop(statement) if not call[1].cancelled()]
        if calls:
            self._queued[statement] = []
            batch = asyncio.get_running_loop().create_task(self._write(statement, calls))
            self._batches.add(batch)
            batch.add_done_callback(self._batches.discard)

    async def _write(self, statement: DirectStatement, calls: list[_Call]) -> None:
        try:
            counts = await statement.rowcounts(self.engine, [params for params, _ in calls])
        except Exception as exc:  # noqa: BLE001 - whatever it is, every caller gets it
            for _, matched in calls:
                if not matched.done():
                    matched.set_exception(exc)
        except BaseException:
            for _, matched in calls:
                matched.cancel()
            raise
        else:
            for (_, matched), count in zip(calls, counts, strict=True):
                if not matched.done():
                    matched.set_result(count)
        finally:
            self._next_batch(statement)

    async def aclose(self) -> None:
        """Wait for the batches in flight (before the engine is disposed)."""
        while self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)
