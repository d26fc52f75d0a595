"""A prebuilt statement sent on the pooled driver connection (``taskgate.db.direct``), on
each backend: the values it stores are the ORM's, it commits on its own, and a driver
error is a database error (503 upstream) that leaves the pool usable."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Table,
    bindparam,
    select,
    update,
)
from sqlalchemy.exc import OperationalError

from taskgate.db import direct, fast_paths
from taskgate.db.direct import DirectStatement
from taskgate.db.models import TaskInstance
from taskgate.db.session import create_engine
from taskgate.services.states import TIState
from tests.integration.db_locks import row_locked
from tests.support.database import fresh_ti

_TI = TaskInstance.__table__
BEAT = DirectStatement(
    update(_TI)
    .where(_TI.c.id == bindparam("ti_id"), _TI.c.state == TIState.RUNNING)
    .values(
        last_heartbeat_at=bindparam("now"), updated_at=bindparam("now"), hostname=bindparam("host")
    )
)

# BEAT, with its many form: on PostgreSQL, one statement for many parameter sets.
MANY_BEAT = DirectStatement.batched(
    lambda value: update(_TI)
    .where(_TI.c.id == value("ti_id"), _TI.c.state == TIState.RUNNING)
    .values(last_heartbeat_at=value("now"), updated_at=value("now"), hostname=value("host")),
    {"ti_id": _TI.c.id.type, "now": _TI.c.updated_at.type, "host": _TI.c.hostname.type},
    key="ti_id",
)


@pytest.fixture
def many_statements(monkeypatch):  # type: ignore[no-untyped-def]
    """The sets in each statement the many form sent, per transaction (the real driver
    still runs)."""
    sent: list[list[int]] = []
    driver = direct.DIRECT_DRIVERS["asyncpg"]

    async def ordinals(connection, sql, arguments):  # type: ignore[no-untyped-def]
        sent.append([len(args[0]) for args in arguments])
        return await driver.ordinals(connection, sql, arguments)

    monkeypatch.setitem(direct.DIRECT_DRIVERS, "asyncpg", driver._replace(ordinals=ordinals))
    return sent


def test_a_column_default_computed_in_python_must_be_given():
    # updated_at has onupdate=utcnow, which only SQLAlchemy's execution path would compute.
    with pytest.raises(ValueError, match="updated_at"):
        DirectStatement(update(_TI).values(hostname=bindparam("host")))


async def test_the_statement_stores_what_the_orm_reads_back_and_commits(runtime, factory):
    ti = await factory.running_row()
    now = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)

    matched = await BEAT.rowcounts(runtime.engine, [{"ti_id": ti.id, "now": now, "host": "h1"}])
    assert matched == [1]
    # A fresh session on another connection sees it: committed, typed as the ORM types it.
    stored = await fresh_ti(runtime, ti.id)
    assert (stored.last_heartbeat_at, stored.hostname) == (now, "h1")
    # The state condition is a bound value too: a queued TI does not match.
    other = await factory.queued_ti()
    assert await BEAT.rowcounts(
        runtime.engine,
        [{"ti_id": other.id, "now": now, "host": "h"}, {"ti_id": uuid.uuid4(), "now": now, "host": "h"}],
    ) == [0, 0]


async def test_several_runs_share_one_transaction_each_with_its_own_count(runtime, factory):
    first, second = await factory.running_row(), await factory.running_row()
    queued = await factory.queued_ti()
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    runs = [{"ti_id": ti.id, "now": now, "host": host}
            for ti, host in ((first, "a"), (queued, "q"), (second, "b"))]
    assert await BEAT.rowcounts(runtime.engine, runs) == [1, 0, 1]
    assert [(await fresh_ti(runtime, ti.id)).hostname for ti in (first, second)] == ["a", "b"]
    assert (await fresh_ti(runtime, queued.id)).hostname != "q"


def test_the_many_form_takes_the_statements_parameters_and_a_key():
    many = MANY_BEAT._many._statement  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="key"):
        DirectStatement(BEAT._statement, many=many)
    with pytest.raises(ValueError, match="key"):
        DirectStatement(BEAT._statement, many=many, many_key="no_such_parameter")
    with pytest.raises(ValueError, match="key"):  # a parameter the statement lacks
        DirectStatement(update(_TI).where(_TI.c.id == bindparam("ti_id")).values(
            updated_at=bindparam("now")), many=many, many_key="ti_id")


async def test_many_sets_are_one_statement_on_postgresql_and_a_row_named_twice_is_written_twice(
    runtime, factory, many_statements
):
    first, second = await factory.running_row(), await factory.running_row()
    queued = await factory.queued_ti()
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    later = datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC)
    runs = [{"ti_id": first.id, "now": now, "host": "a"},
            {"ti_id": uuid.uuid4(), "now": now, "host": "nobody"},
            {"ti_id": queued.id, "now": now, "host": "q"},
            {"ti_id": second.id, "now": now, "host": "b"},
            {"ti_id": first.id, "now": later, "host": "a again"}]
    assert await MANY_BEAT.rowcounts(runtime.engine, runs) == [1, 0, 0, 1, 1]
    # The first four sets in one statement; the row named again in a second one, after it.
    # (SQLite, and every backend with the fast paths off, runs them one by one.)
    one_statement = not runtime.settings.uses_embedded_database and fast_paths.enabled(runtime.engine)
    assert many_statements == ([[4, 1]] if one_statement else [])
    stored = [await fresh_ti(runtime, ti.id) for ti in (first, second, queued)]
    assert [(ti.hostname, ti.last_heartbeat_at) for ti in stored[:2]] == [
        ("a again", later), ("b", now)]
    assert stored[2].hostname != "q"
    # One set alone is the plain statement.
    assert await MANY_BEAT.rowcounts(runtime.engine, [runs[3]]) == [1]
    assert len(many_statements) <= 1


async def test_a_failing_statement_of_the_many_form_rolls_back_the_others(runtime, factory):
    first, second = await factory.running_row(), await factory.running_row()
    before = [(await fresh_ti(runtime, ti.id)).hostname for ti in (first, second)]
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    # updated_at is NOT NULL: the second statement (first.id named again) fails.
    runs = [{"ti_id": first.id, "now": now, "host": "lost"},
            {"ti_id": second.id, "now": now, "host": "lost"},
            {"ti_id": first.id, "now": None, "host": "x"}]
    with pytest.raises(OperationalError):
        await MANY_BEAT.rowcounts(runtime.engine, runs)
    assert [(await fresh_ti(runtime, ti.id)).hostname for ti in (first, second)] == before
    assert runtime.engine.sync_engine.pool.checkedout() == 0


async def test_a_failing_run_rolls_back_the_whole_transaction(runtime, factory):
    # updated_at is NOT NULL: the second run fails after the first one was sent.
    stamp = DirectStatement(
        update(_TI).where(_TI.c.id == bindparam("ti_id")).values(
            hostname=bindparam("host"), updated_at=bindparam("now"))
    )
    first, second = await factory.running_row(), await factory.running_row()
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    with pytest.raises(OperationalError):
        await stamp.rowcounts(runtime.engine, [{"ti_id": first.id, "now": now, "host": "kept?"},
                                               {"ti_id": second.id, "now": None, "host": "x"}])
    assert (await fresh_ti(runtime, first.id)).hostname != "kept?"  # nothing half-written
    assert runtime.engine.sync_engine.pool.checkedout() == 0
    assert await stamp.rowcounts(
        runtime.engine, [{"ti_id": first.id, "now": now, "host": "later"}]) == [1]


async def test_a_driver_error_is_a_database_error_and_the_pool_goes_on(runtime):
    missing = Table("no_such_table", MetaData(), Column("v", Integer))
    broken = DirectStatement(update(missing).values(v=bindparam("v")))
    with pytest.raises(OperationalError):
        await broken.rowcounts(runtime.engine, [{"v": 1}])
    async with runtime.engine.connect() as conn:  # the failed connection was replaced
        assert (await conn.execute(select(1))).scalar_one() == 1


async def test_other_drivers_take_sqlalchemys_own_path(runtime, factory, monkeypatch):
    monkeypatch.setattr(direct, "DIRECT_DRIVERS", {})
    ti = await factory.running_row()
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    params = {"ti_id": ti.id, "now": now, "host": "h2"}
    assert await BEAT.rowcounts(runtime.engine, [params]) == [1]
    assert (await fresh_ti(runtime, ti.id)).hostname == "h2"
    stored = await fresh_ti(runtime, ti.id)
    assert await READ.first(runtime.engine, {"ti_id": ti.id}) == (
        "running", now, -1, "h2", stored.tokens_not_before)


async def test_cancelled_while_waiting_for_a_lock_it_is_all_or_nothing_and_leaks_nothing(
    runtime, factory
):
    """Cancelled while it waits, the statement has been sent: whether it still lands is a
    race with the cancellation, as for any statement in flight (on PostgreSQL it commits on
    its own as soon as the lock goes). It is never half-applied, and the connection is
    not lost to the pool."""
    ti = await factory.running_row()
    before = await fresh_ti(runtime, ti.id)
    untouched = (before.hostname, before.last_heartbeat_at)
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    params = {"ti_id": ti.id, "now": now, "host": "cancelled"}
    # Another engine (as another process would) holds the row: the statement waits for it.
    holder = create_engine(runtime.settings.effective_database_url)
    try:
        async with row_locked(runtime, ti.id, engine=holder):
            waiting = asyncio.create_task(BEAT.rowcounts(runtime.engine, [params]))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            waiting.cancel()
        # The lock went with the block (rolled back).
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(waiting, 10)
    finally:
        await holder.dispose()
    assert runtime.engine.sync_engine.pool.checkedout() == 0
    stored = await fresh_ti(runtime, ti.id)
    assert (stored.hostname, stored.last_heartbeat_at) in (untouched, ("cancelled", now))
    params["host"] = "after"
    assert await BEAT.rowcounts(runtime.engine, [params]) == [1]  # the pool serves on


# A timestamp (its type processes results) and a float (on PostgreSQL its processing
# depends on the type the server reports).
READ = DirectStatement(
    select(_TI.c.state, _TI.c.last_heartbeat_at, _TI.c.map_index, _TI.c.hostname,
           _TI.c.tokens_not_before).where(_TI.c.id == bindparam("ti_id"))
)


async def test_first_reads_one_row_typed_as_the_orm_types_it(runtime, factory):
    ti = await factory.running_row()
    now = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
    assert await BEAT.rowcounts(runtime.engine, [{"ti_id": ti.id, "now": now, "host": "h1"}])
    # The timestamp comes back aware, through its type's result processor, as the ORM's does.
    stored = await fresh_ti(runtime, ti.id)
    orm = (stored.state, stored.last_heartbeat_at, stored.map_index, stored.hostname,
           stored.tokens_not_before)
    assert orm[:4] == ("running", now, -1, "h1")
    assert await READ.first(runtime.engine, {"ti_id": ti.id}) == orm
    assert await READ.first(runtime.engine, {"ti_id": uuid.uuid4()}) is None
    # Nothing is held open: the next read sees what was committed in between.
    later = datetime(2026, 3, 4, 5, 6, 8, tzinfo=UTC)
    assert await BEAT.rowcounts(runtime.engine, [{"ti_id": ti.id, "now": later, "host": "h2"}])
    async with runtime.engine.begin() as conn:
        await conn.execute(update(_TI).where(_TI.c.id == ti.id).values(tokens_not_before=1.5))
    assert await READ.first(runtime.engine, {"ti_id": ti.id}) == ("running", later, -1, "h2", 1.5)
    assert runtime.engine.sync_engine.pool.checkedout() == 0


async def test_a_failing_read_is_a_database_error_and_the_pool_goes_on(runtime):
    missing = Table("no_such_table", MetaData(), Column("v", Integer))
    broken = DirectStatement(select(missing.c.v).where(missing.c.v == bindparam("v")))
    with pytest.raises(OperationalError):
        await broken.first(runtime.engine, {"v": 1})
    assert runtime.engine.sync_engine.pool.checkedout() == 0
    async with runtime.engine.connect() as conn:
        assert (await conn.execute(select(1))).scalar_one() == 1
