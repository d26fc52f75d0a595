"""Batched inserts: rows that many concurrent callers add to one table, written together,
a bounded number of transactions at a time.

For records that ride along with requests (the read audit): each caller's row must be
committed before the caller answers, but a transaction and a commit per row would cost
each request a pool checkout and a commit of its own. ``add`` queues the row; a writer
task writes every row queued so far in one transaction (``DirectStatement.execute_all``:
on PostgreSQL the driver pipelines the batch's inserts, one round trip; with the fast
paths off, SQLAlchemy's multi-row insert). Up to ``in_flight`` writers run at once; rows
added while all are busy wait and go in the next transaction. So under load the batches
grow, not the transactions, and with more than one writer a row need not wait for the
commit of the batch before its own. Each caller gets, once its transaction has
committed, nothing, or the error that rolled it back (every caller of that transaction
gets it, and none of its rows was written).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.db.direct import DirectStatement
from taskgate.db.group_commit import answer_all

_Row = tuple[dict[str, Any], "asyncio.Future[None]"]


class BatchedInserts:
    """Runs ``insert`` (a ``DirectStatement``) for the rows of concurrent callers, at
    most ``in_flight`` transactions at a time."""

    def __init__(self, engine: AsyncEngine, insert: DirectStatement, *, in_flight: int = 1) -> None:
        self._engine = engine
        self._insert = insert
        self._in_flight = in_flight
        self._queued: list[_Row] = []
        self._writers: set[asyncio.Task[None]] = set()

    async def add(self, row: dict[str, Any]) -> None:
        """Insert ``row``; returns once it is committed."""
        await self.queue(row)

    def queue(self, row: dict[str, Any]) -> asyncio.Future[None]:
        """Queue ``row`` for insertion; the future is done once it is committed (or has
        the error that rolled it back), for a caller that need not wait for it."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((row, written))
        # A writer started for the first row queued takes every row queued until it runs.
        if len(self._writers) < self._in_flight and len(self._queued) == 1:
            self._writers.add(asyncio.get_running_loop().create_task(self._write_all()))
        return written

    async def _write_all(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                batch = [(row, written) for row, written in batch if not written.cancelled()]
                if batch:
                    await self._write(batch)
        finally:
            # At once, not in a done callback: a row queued before that ran would find
            # no writer free and none coming.
            self._writers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _write(self, batch: list[_Row]) -> None:
        rows = [row for row, _ in batch]
        await answer_all([written for _, written in batch], self._insert_all(rows))

    async def _insert_all(self, rows: list[dict[str, Any]]) -> list[None]:
        await self._insert.execute_all(self._engine, rows)
        return [None] * len(rows)

    async def aclose(self) -> None:
        """Wait for rows queued or being written (before the engine is disposed)."""
        while self._writers:
            await asyncio.gather(*self._writers, return_exceptions=True)
