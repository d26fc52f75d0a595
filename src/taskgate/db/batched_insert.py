"""Batched inserts: rows that many concurrent callers add to one table, written together,
one transaction at a time.

For records that ride along with requests (the read audit): each caller's row must be
committed before the caller answers, but a transaction and a commit per row would cost
each request a pool checkout and a commit of its own. ``add`` queues the row; one task
writes every row queued so far in one transaction, as one multi-row ``INSERT``
(SQLAlchemy's "insertmanyvalues", its public path); rows added while that transaction
is in flight wait for it and go in the next one. So under load the batches grow, not
the transactions. Each caller gets, once its transaction has committed, nothing, or the
error that rolled it back (every caller of that transaction gets it, and none of its
rows was written).
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.db.group_commit import answer_all

_Row = tuple[dict[str, Any], "asyncio.Future[None]"]


class BatchedInserts:
    """Inserts rows into ``table`` for concurrent callers, one transaction in flight."""

    def __init__(self, engine: AsyncEngine, table: Table) -> None:
        self._engine = engine
        self._insert = insert(table)
        self._queued: list[_Row] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, row: dict[str, Any]) -> None:
        """Insert ``row``; returns once it is committed."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((row, written))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_all())
        await written

    async def _write_all(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                batch = [(row, written) for row, written in batch if not written.cancelled()]
                if batch:
                    await self._write(batch)
        finally:
            self._writer = None

    async def _write(self, batch: list[_Row]) -> None:
        rows = [row for row, _ in batch]
        await answer_all([written for _, written in batch], self._insert_all(rows))

    async def _insert_all(self, rows: list[dict[str, Any]]) -> list[None]:
        async with self._engine.begin() as connection:
            await connection.execute(self._insert, rows)
        return [None] * len(rows)

    async def aclose(self) -> None:
        """Wait for rows queued or being written (before the engine is disposed)."""
        while self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
