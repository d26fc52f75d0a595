"""Holding the database still from the test's side, to keep a server request in flight."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.runtime import Runtime


@asynccontextmanager
async def row_locked(
    runtime: Runtime, ti_id: uuid.UUID, *, engine: AsyncEngine | None = None
) -> AsyncIterator[None]:
    """A transaction that has written the TI's row and not committed: the server's writes
    to it wait (PostgreSQL: the row lock; SQLite: the database write lock, for up to the
    server's 5 s busy timeout). Rolled back on exit. ``engine``: hold it from another
    engine than the runtime's (needed when the runtime's own engine must write)."""
    async with (engine or runtime.engine).connect() as conn:
        await conn.execute(
            text("UPDATE task_instances SET updated_at = updated_at WHERE id = :id"),
            {"id": ti_id.hex if runtime.settings.uses_embedded_database else ti_id},
        )
        yield
        await conn.rollback()
