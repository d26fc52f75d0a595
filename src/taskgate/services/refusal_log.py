"""The refusal log: every request the Execution API's security layers refuse is recorded
(when, method, route template, status, reason, and the TI its token named once a token
was read; never the token, never the concrete path), so an operator can see who is being
refused and why (the operator page, ``GET /control/v1/refusals``) on any replica.

A refusal must stay cheap and must not depend on the database (a refusal may be the
answer to a flood, or come while the database is down): ``RefusalLog.note`` queues the
record and returns at once; the records of concurrent refusals are written together
(``db.batched_insert``). A record that cannot be written is logged and dropped, and so is
any beyond ``MAX_PENDING`` records waiting to be written: the structured audit log
(``auth.denied``) and the ``taskgate_auth_denials_total`` counter still have every one.
Records older than ``TASKGATE_REFUSAL_RETENTION_HOURS`` are purged with old events.

What an operator sees follows its teams: a record whose TI belongs to a DAG of one of its
teams; records without a TI (no token read, or one naming no TI) only an operator
without teams sees.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Collection
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql import Select

from taskgate import logs
from taskgate.db.batched_insert import BatchedInserts
from taskgate.db.direct import DirectStatement
from taskgate.db.models import Dag, RefusalRecord, TaskInstance, utcnow

log = logs.get_logger("taskgate.refusals")

# Records queued and not yet written, at most: beyond, a flood of refusals is counted and
# logged but not recorded one by one.
MAX_PENDING = 10_000

RECORD = DirectStatement(insert(RefusalRecord).values({
    column.name: bindparam(column.name, type_=column.type)
    for column in RefusalRecord.__table__.columns if column.name != "id"
}))


class RefusalLog:
    """Records refusals in the background, the records of concurrent ones together."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._writes = BatchedInserts(engine, RECORD)
        self._pending: set[asyncio.Future[None]] = set()
        self.dropped = 0  # records not written: too many pending, or a database fault

    def note(self, *, method: str, route: str, status: int, reason: str,
             ti_id: uuid.UUID | None) -> None:
        """Queue the record of one refusal; never waits, never raises."""
        if len(self._pending) >= MAX_PENDING:
            self._drop("too many refusals waiting to be recorded")
            return
        row = {"at": utcnow(), "method": method[:10], "route": route[:250], "status": status,
               "reason": reason[:50], "ti_id": ti_id}
        written = self._writes.queue(row)
        self._pending.add(written)
        written.add_done_callback(self._written)

    def _written(self, written: asyncio.Future[None]) -> None:
        self._pending.discard(written)
        if not written.cancelled() and written.exception() is not None:
            self._drop(repr(written.exception())[:300])

    def _drop(self, why: str) -> None:
        self.dropped += 1
        if self.dropped == 1 or self.dropped % 1000 == 0:  # a flood logs a line per 1,000
            log.warning("refusals not recorded", dropped=self.dropped, cause=why)

    async def flush(self) -> None:
        """Wait until the records noted so far are written (or dropped)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def aclose(self) -> None:
        await self.flush()
        await self._writes.aclose()


def _visible(statement: Select[Any], since: datetime, teams: Collection[str]) -> Select[Any]:
    statement = statement.where(RefusalRecord.at >= since)
    if teams:
        statement = statement.join(
            TaskInstance, TaskInstance.id == RefusalRecord.ti_id
        ).join(Dag, Dag.dag_id == TaskInstance.dag_id).where(Dag.team.in_(teams))
    return statement


async def summary(
    session: AsyncSession, *, since: datetime, teams: Collection[str] = (),
    ti_id: uuid.UUID | None = None, latest: int = 50,
) -> dict[str, Any]:
    """The refusals since ``since`` that an operator of ``teams`` sees (of one TI with
    ``ti_id``): how many, by reason, by route, and the ``latest`` ones, newest first."""
    def scoped(statement: Select[Any]) -> Select[Any]:
        statement = _visible(statement, since, teams)
        return statement if ti_id is None else statement.where(RefusalRecord.ti_id == ti_id)

    count = func.count().label("count")
    by_reason = (await session.execute(scoped(
        select(RefusalRecord.reason, count).group_by(RefusalRecord.reason)
        .order_by(count.desc(), RefusalRecord.reason)
    ))).all()
    by_route = (await session.execute(scoped(
        select(RefusalRecord.method, RefusalRecord.route, count)
        .group_by(RefusalRecord.method, RefusalRecord.route)
        .order_by(count.desc(), RefusalRecord.route, RefusalRecord.method)
    ))).all()
    named = TaskInstance.__table__.alias("named_ti")  # the TI named, for any operator
    newest = (await session.execute(scoped(
        select(RefusalRecord, named.c.dag_id, named.c.task_id)
        .outerjoin(named, named.c.id == RefusalRecord.ti_id)
        .order_by(RefusalRecord.at.desc(), RefusalRecord.id.desc())
        .limit(latest)
    ))).all()
    return {
        "since": since.isoformat(),
        "total": sum(n for _, n in by_reason),
        "by_reason": [{"reason": reason, "count": n} for reason, n in by_reason],
        "by_route": [{"method": m, "route": r, "count": n} for m, r, n in by_route],
        "latest": [
            {"at": record.at.isoformat(), "method": record.method, "route": record.route,
             "status": record.status, "reason": record.reason,
             "ti_id": None if record.ti_id is None else str(record.ti_id),
             "dag_id": dag_id, "task_id": task_id}
            for record, dag_id, task_id in newest
        ],
    }


async def purge(session: AsyncSession, retention: timedelta) -> int:
    """Delete the records older than ``retention``; how many."""
    deleted = await session.execute(
        delete(RefusalRecord).where(RefusalRecord.at < utcnow() - retention)
    )
    await session.commit()
    return int(deleted.rowcount or 0)
