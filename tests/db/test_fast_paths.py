"""The switch back to the public paths (``taskgate.db.fast_paths``): with the fast paths
off, nothing below a library's public API runs, and every statement goes through
SQLAlchemy's own execution path, where its events see it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import bindparam, event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from taskgate.db import fast_paths
from taskgate.db.direct import DirectStatement
from taskgate.db.models import TaskInstance, utcnow
from taskgate.db.pool import FairAsyncQueuePool
from taskgate.db.session import EngineOptions, create_engine
from taskgate.db.sqlite import InlineSQLiteConnection
from taskgate.runtime import Runtime

_TI = TaskInstance.__table__
TOUCH = DirectStatement(
    update(_TI).where(_TI.c.id == bindparam("ti_id")).values(updated_at=bindparam("now"))
)
STATE = DirectStatement(select(_TI.c.state).where(_TI.c.id == bindparam("ti_id")))


@pytest.fixture(params=[True, False], ids=["fast", "public"])
async def engine(request, settings) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    engine = create_engine(settings.effective_database_url, EngineOptions(fast_paths=request.param))
    try:
        yield engine
    finally:
        await engine.dispose()


def seen_by_sqlalchemy(engine: AsyncEngine) -> list[str]:
    """The statements SQLAlchemy's execution path runs on ``engine`` from now on."""
    seen: list[str] = []
    event.listen(
        engine.sync_engine,
        "before_cursor_execute",
        lambda _conn, _cursor, statement, *_rest: seen.append(statement),
    )
    return seen


async def test_the_switch_decides_the_pool_the_connection_and_the_statement_path(
    engine: AsyncEngine, runtime: Runtime, factory
) -> None:  # type: ignore[no-untyped-def]
    on = fast_paths.enabled(engine)
    ti = await factory.running_row()
    seen = seen_by_sqlalchemy(engine)

    assert await TOUCH.rowcounts(engine, [{"ti_id": ti.id, "now": utcnow()}]) == [1]
    assert await STATE.first(engine, {"ti_id": ti.id}) == ("running",)
    assert await STATE.first(engine, {"ti_id": uuid.uuid4()}) is None

    # On the fast paths they went straight to the driver; off, through SQLAlchemy.
    kinds = [sql.split()[0] for sql in seen if "task_instances" in sql]
    assert kinds == ([] if on else ["UPDATE", "SELECT", "SELECT"])
    assert (type(engine.sync_engine.pool) is FairAsyncQueuePool) is on
    assert isinstance(engine.sync_engine.pool, AsyncAdaptedQueuePool)
    if engine.dialect.name == "sqlite":
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
        assert isinstance(driver, InlineSQLiteConnection) is on


async def test_the_setting_reaches_the_runtimes_engine(settings) -> None:  # type: ignore[no-untyped-def]
    for value in (True, False):
        runtime = Runtime.from_settings(settings.model_copy(update={"db_fast_paths": value}))
        try:
            assert fast_paths.enabled(runtime.engine) is value
        finally:
            await runtime.aclose()


def test_a_write_may_not_name_a_parameter_as_a_column_of_its_table():
    # SQLAlchemy's own path refuses it at execution; a DirectStatement at construction.
    with pytest.raises(ValueError, match="hostname"):
        DirectStatement(update(_TI).where(_TI.c.hostname == bindparam("hostname")).values(
            updated_at=bindparam("now")))
