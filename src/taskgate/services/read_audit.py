"""The read audit: every read of a variable or connection by a task, allowed or refused,
is recorded (TI, DAG, task, map index, try, key, outcome and the refusing rule, the
worker's hostname, time), never the value.

Recording is a step of the read (``services.variables.read``, ``connections.read``): the
value is answered only after its record is committed, so a read that cannot be recorded
fails instead of being served unrecorded: 503 with the database fault's reason (a
read-only or full database, ...) or ``audit_unavailable``. The
records of concurrent reads are written together, in one transaction, a few transactions
at a time (``db.batched_insert``), so recording costs a read little.
``TASKGATE_READ_AUDIT=false`` turns it off; records older than
``TASKGATE_READ_AUDIT_RETENTION_DAYS`` are purged with old events.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Collection, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from sqlalchemy import bindparam, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from taskgate import logs
from taskgate.db.availability import fault_of
from taskgate.db.batched_insert import BatchedInserts
from taskgate.db.direct import DirectStatement
from taskgate.db.models import ReadAudit as Record
from taskgate.db.models import utcnow
from taskgate.services.access import Requester
from taskgate.services.declared_access import Entry
from taskgate.services.errors import AccessDenied, NotFound, Unavailable

log = logs.get_logger("taskgate.audit")

T = TypeVar("T")

READ_LIMIT = 1000
IN_FLIGHT = 4  # record transactions at a time (PostgreSQL)


class Outcome(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"
    NOT_FOUND = "not_found"


RECORD = DirectStatement(insert(Record).values({
    column.name: bindparam(column.name, type_=column.type)
    for column in Record.__table__.columns if column.name != "id"
}))


class ReadAudit:
    """Records reads, the records of concurrent reads in one transaction
    (``db.batched_insert``); ``enabled=False`` records nothing."""

    def __init__(self, engine: AsyncEngine, *, enabled: bool = True) -> None:
        # PostgreSQL commits overlapping transactions together, so a read need not wait for
        # the batch before its own; SQLite writes one transaction at a time anyway.
        in_flight = 1 if engine.dialect.name == "sqlite" else IN_FLIGHT
        self._writes = BatchedInserts(engine, RECORD, in_flight=in_flight)
        self.enabled = enabled

    async def aclose(self) -> None:
        """Wait for records still being written."""
        await self._writes.aclose()

    async def record(
        self, requester: Requester, entry: Entry, key: str, outcome: Outcome,
        reason: str | None = None,
    ) -> None:
        """Record one read; returns once the record is committed (raises if it cannot
        be: the read must then fail)."""
        if not self.enabled:
            return
        row = {
            "at": utcnow(),
            "ti_id": requester.ti_id,
            "dag_id": requester.dag_id,
            "task_id": requester.task_id,
            "map_index": requester.map_index,
            "try_number": requester.try_number,
            "team": requester.team,
            "kind": entry.value,
            "key": key,
            "outcome": outcome.value,
            "reason": reason,
            "hostname": requester.hostname,
        }
        try:
            await self._writes.add(row)
        except Exception as exc:
            log.error("read audit: a read could not be recorded; it is refused",
                      kind=entry.value, key=key, ti_id=str(requester.ti_id),
                      error=type(exc).__name__, cause=repr(exc.__cause__ or exc)[:300])
            if fault_of(exc) is not None:
                raise  # answered as that database fault: 503, its reason, Retry-After
            raise Unavailable(
                "audit_unavailable",
                "The read could not be recorded in the read audit, so it is refused; "
                "retry shortly (the server log says why)",
            ) from exc


async def audited(
    audit: ReadAudit,
    session: AsyncSession,
    requester: Requester,
    entry: Entry,
    key: str,
    read: Callable[[], Awaitable[T]],
) -> T:
    """``read()``'s value, once the read is recorded: allowed, refused (with the rule
    that refused) or not found. ``session``, the read's, is closed first: its connection
    goes back to the pool before the record needs one."""
    failure: AccessDenied | NotFound | None = None
    try:
        value = await read()
    except AccessDenied as exc:
        failure, outcome, reason = exc, Outcome.REFUSED, exc.code
    except NotFound as exc:
        failure, outcome, reason = exc, Outcome.NOT_FOUND, None
    else:
        outcome, reason = Outcome.ALLOWED, None
    await session.close()
    await audit.record(requester, entry, key, outcome, reason)
    if failure is not None:
        raise failure
    return value


async def reads(
    session: AsyncSession,
    *,
    ti_id: uuid.UUID | None = None,
    dag_id: str | None = None,
    key: str | None = None,
    since: datetime | None = None,
    teams: Collection[str] = (),
    limit: int = READ_LIMIT,
) -> Sequence[Record]:
    """Recorded reads, newest first, filtered; ``teams`` (empty: all) scopes them to the
    DAGs of those teams."""
    stmt = select(Record).order_by(Record.id.desc()).limit(limit)
    if ti_id is not None:
        stmt = stmt.where(Record.ti_id == ti_id)
    if dag_id is not None:
        stmt = stmt.where(Record.dag_id == dag_id)
    if key is not None:
        stmt = stmt.where(Record.key == key)
    if since is not None:
        stmt = stmt.where(Record.at >= since)
    if teams:
        stmt = stmt.where(Record.team.in_(teams))
    return (await session.execute(stmt)).scalars().all()


async def purge(session: AsyncSession, retention: timedelta) -> int:
    """Delete records older than ``retention``; how many."""
    deleted = await session.execute(delete(Record).where(Record.at < utcnow() - retention))
    await session.commit()
    return int(deleted.rowcount or 0)
