"""A prebuilt statement sent on the pooled driver connection (``taskgate.db.direct``), on
each backend: the values it stores are the ORM's, it commits on its own, and a driver
error is a database error (503 upstream) that leaves the pool usable."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, bindparam, select, update
from sqlalchemy.exc import OperationalError

from taskgate.db import direct
from taskgate.db.direct import DirectStatement
from taskgate.db.models import TaskInstance
from taskgate.services.states import TIState

_TI = TaskInstance.__table__
BEAT = DirectStatement(
    update(_TI)
    .where(_TI.c.id == bindparam("ti_id"), _TI.c.state == TIState.RUNNING)
    .values(
        last_heartbeat_at=bindparam("now"), updated_at=bindparam("now"), hostname=bindparam("host")
    )
)


def test_a_column_default_computed_in_python_must_be_given():
    # updated_at has onupdate=utcnow, which only SQLAlchemy's execution path would compute.
    with pytest.raises(ValueError, match="updated_at"):
        DirectStatement(update(_TI).values(hostname=bindparam("host")))


async def test_the_statement_stores_what_the_orm_reads_back_and_commits(runtime, factory):
    ti = await factory.queued_ti()
    async with runtime.sessionmaker() as session:
        await session.execute(update(_TI).where(_TI.c.id == ti.id).values(state="running"))
        await session.commit()
    now = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)

    matched = await BEAT.rowcount(runtime.engine, {"ti_id": ti.id, "now": now, "host": "h1"})
    assert matched == 1
    # A fresh session on another connection sees it: committed, typed as the ORM types it.
    async with runtime.sessionmaker() as session:
        stored = await session.get(TaskInstance, ti.id)
        assert stored is not None
        assert (stored.last_heartbeat_at, stored.hostname) == (now, "h1")
    # The state condition is a bound value too: a queued TI does not match.
    other = await factory.queued_ti()
    assert await BEAT.rowcount(runtime.engine, {"ti_id": other.id, "now": now, "host": "h"}) == 0
    assert (
        await BEAT.rowcount(runtime.engine, {"ti_id": uuid.uuid4(), "now": now, "host": "h"}) == 0
    )


async def test_a_driver_error_is_a_database_error_and_the_pool_goes_on(runtime):
    missing = Table("no_such_table", MetaData(), Column("v", Integer))
    broken = DirectStatement(update(missing).values(v=bindparam("v")))
    with pytest.raises(OperationalError):
        await broken.rowcount(runtime.engine, {"v": 1})
    async with runtime.engine.connect() as conn:  # the failed connection was replaced
        assert (await conn.execute(select(1))).scalar_one() == 1


async def test_other_drivers_take_sqlalchemys_own_path(runtime, factory, monkeypatch):
    monkeypatch.setattr(direct, "DIRECT_DRIVERS", frozenset())
    ti = await factory.queued_ti()
    async with runtime.sessionmaker() as session:
        await session.execute(update(_TI).where(_TI.c.id == ti.id).values(state="running"))
        await session.commit()
    now = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert await BEAT.rowcount(runtime.engine, {"ti_id": ti.id, "now": now, "host": "h2"}) == 1
    async with runtime.sessionmaker() as session:
        stored = await session.get(TaskInstance, ti.id)
        assert stored is not None and stored.hostname == "h2"
