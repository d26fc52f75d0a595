"""The database behind a test's back: reading it as it is now, past every cache, and
PostgreSQL administration."""

from __future__ import annotations

import uuid

import asyncpg

from taskgate.db.models import TaskInstance
from taskgate.runtime import Runtime
from taskgate.services.task_instances import get_task_instance


async def fresh_ti(runtime: Runtime, ti_id: uuid.UUID) -> TaskInstance:
    """The TI as the database has it now (its own session: nothing cached)."""
    async with runtime.sessionmaker() as session:
        return await get_task_instance(session, ti_id)


async def postgres_admin(dsn: str, sql: str) -> None:
    """Run ``sql`` on its own connection to ``dsn`` (``postgresql://``), outside any
    transaction (CREATE DATABASE, ALTER DATABASE ...)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()
