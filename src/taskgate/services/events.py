"""Events: every TI state change, token revocation and operator action, as a row written
in the transaction that made the change (``commit``), so that no change exists without
its event and no event without its change.

Order. A follower resumes "after id N", so an event that becomes readable later must
have a higher id than every event readable now. A database sequence does not give that:
on PostgreSQL two transactions may take ids 10 and 11 and commit 11 first; a follower
reading then would resume after 11 and never see 10. Serializing the writers (a lock
held through each commit) would give it, at the price of every state change waiting for
every other one's commit. Instead, on PostgreSQL an event's id is its transaction's id
(``pg_current_xact_id``) times ``TX_SPAN`` plus its place in the transaction, and a read
returns only events whose transaction is older than the oldest transaction still
writing (the reader's snapshot ``xmin``). Everything below that bound is final: those
transactions have ended, and any transaction that ends later has a higher id. The cost
is delivery latency: an event waits until every writing transaction that began before
its own has ended. SQLite has one writer at a time, so its sequence is in commit order.

Retention. ``purge`` deletes what is older than the retention and records how far it
went (``event_horizon``); a follower asking to resume from before that point is told so
(``Gone``, 410 ``events_expired``) rather than given a gap.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import time
from collections.abc import AsyncIterator, Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, func, insert, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskgate.db.models import Dag, Event, EventHorizon, utcnow
from taskgate.db.upsert import upsert
from taskgate.services.errors import Gone, InvalidRequest

# Ids per transaction on PostgreSQL (see the module docstring): a transaction writes at
# most this many events. 2**20 keeps ids under 2**53 (exact in JavaScript) for the first
# 2**33 transactions, and under 2**63 for 2**43.
TX_SPAN = 2**20

READ_LIMIT = 1000
# How long a one-off read (the backlog as a list) waits, at most, for events that are
# committed but not final yet: well under the request deadline.
SETTLE = 0.5


class EventKind(StrEnum):
    TI_STATE = "ti.state"
    TI_REVOKED = "ti.revoked"
    OPERATOR_ACTION = "operator.action"


def _local_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no name for this uid (containers)
        return "cli"


# Who acts when the CLI runs on the database host (no operator key there: it holds the
# database credentials).
LOCAL_ACTOR = _local_actor()


def task_actor(ti_id: object) -> str:
    """The actor of a change a task's own worker made."""
    return f"task:{ti_id}"


@dataclass(frozen=True)
class NewEvent:
    kind: EventKind
    data: dict[str, Any]
    dag_id: str | None = None
    # For what is not a DAG's (variables, connections, operators). A DAG's event takes
    # the DAG's team, read in the insert itself.
    team: str | None = None


def ti_state(ti: Any, to: str, *, previous: str | None) -> NewEvent:
    """``ti`` moved from ``previous`` (None: it was just created) to ``to``. ``ti`` is
    anything with the TI's identity attributes (a row or a model)."""
    return NewEvent(
        EventKind.TI_STATE,
        {**_identity(ti), "from": previous, "to": to},
        dag_id=ti.dag_id,
    )


def ti_revoked(ti: Any, tokens_not_before: float) -> NewEvent:
    return NewEvent(
        EventKind.TI_REVOKED,
        {**_identity(ti), "tokens_not_before": tokens_not_before},
        dag_id=ti.dag_id,
    )


def operator_action(
    action: str, target: str, *, dag_id: str | None = None, team: str | None = None,
    **details: Any,
) -> NewEvent:
    """An operator did ``action`` (``dag.put``, ``run.create``, ``variable.put``, ...) to
    ``target``; ``details`` never hold secret values."""
    return NewEvent(
        EventKind.OPERATOR_ACTION,
        {"action": action, "target": target, "dag_id": dag_id, "team": team, **details},
        dag_id=dag_id,
        team=team,
    )


def _identity(ti: Any) -> dict[str, Any]:
    return {
        "ti_id": str(ti.id),
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "try_number": ti.try_number,
    }


_team_of_dag = select(Dag.team).where(Dag.dag_id == bindparam("e_dag_id")).scalar_subquery()
_VALUES = {
    "kind": bindparam("e_kind"),
    "at": bindparam("e_at"),
    "actor": bindparam("e_actor"),
    "dag_id": bindparam("e_dag_id"),
    "team": func.coalesce(bindparam("e_team"), _team_of_dag),
    "data": bindparam("e_data"),
}
_INSERT = insert(Event).values(**_VALUES)
_PG_TX_BASE = literal_column(f"(pg_current_xact_id()::text::bigint * {TX_SPAN})")
_INSERT_PG = insert(Event).values(id=_PG_TX_BASE + bindparam("e_seq"), **_VALUES)
# Every event below this id is final (on PostgreSQL; see the module docstring).
_PG_FINAL_BELOW = literal_column(
    f"(pg_snapshot_xmin(pg_current_snapshot())::text::bigint * {TX_SPAN})"
)


def _on_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _final(session: AsyncSession) -> list[ColumnElement[bool]]:
    """The condition for an event to be readable (none on SQLite: all are)."""
    return [Event.id < _PG_FINAL_BELOW] if _on_postgresql(session) else []


async def commit(session: AsyncSession, actor: str, events: Iterable[NewEvent]) -> None:
    """Write ``events`` and commit the session's transaction: the last step of a change
    (see the module docstring for why it must be the last)."""
    now = utcnow()
    at = now.isoformat()
    rows = [
        {
            "e_kind": event.kind.value,
            "e_at": now,
            "e_actor": actor,
            "e_dag_id": event.dag_id,
            "e_team": event.team,
            "e_data": json.dumps({**event.data, "at": at, "actor": actor}, default=str),
        }
        for event in events
    ]
    if rows:
        if _on_postgresql(session):
            if len(rows) > TX_SPAN:
                raise InvalidRequest(
                    "too_many_events",
                    f"one change may write at most {TX_SPAN} events; this one wrote {len(rows)}",
                )
            for seq, row in enumerate(rows):
                row["e_seq"] = seq
            await session.execute(_INSERT_PG, rows)
        else:
            await session.execute(_INSERT, rows)
    await session.commit()


@dataclass(frozen=True)
class EventRecord:
    id: int
    kind: str
    dag_id: str | None
    team: str | None
    data_json: str  # the event's data, as stored and sent

    @cached_property
    def data(self) -> dict[str, Any]:
        # Parsed on demand: the stream sends data_json as it is.
        return json.loads(self.data_json)  # type: ignore[no-any-return]

    def visible_to(self, teams: Collection[str], dag_id: str | None) -> bool:
        """Whether a follower of ``teams`` (empty: all) filtering on ``dag_id`` gets it."""
        return (not teams or self.team in teams) and (dag_id is None or self.dag_id == dag_id)


_COLUMNS = (Event.id, Event.kind, Event.dag_id, Event.team, Event.data)


def _records(rows: Iterable[Any]) -> list[EventRecord]:
    return [EventRecord(*row) for row in rows]


async def horizon(session: AsyncSession) -> int:
    """The id up to which events were purged (0: none were)."""
    return int(await session.scalar(select(EventHorizon.purged_through)) or 0)


async def latest_id(session: AsyncSession, purged: int | None = None) -> int:
    """The highest id readable now (purged ones included); ``purged``: the horizon, if
    the caller has read it already."""
    newest = await session.scalar(select(func.max(Event.id)).where(*_final(session)))
    return max(int(newest or 0), await horizon(session) if purged is None else purged)


async def check_resume_point(session: AsyncSession, after: int | None) -> None:
    """Refuse a resume point the feed cannot continue from without a gap or a guess."""
    if after is None:
        return
    purged = await horizon(session)
    if after < purged:
        raise Gone(
            "events_expired",
            f"events up to id {purged} were purged (older than the retention); resuming "
            f"after {after} would miss some. Start again from after={purged} or without "
            "a resume point, and re-read the state you need.",
            horizon=purged,
        )
    if after > (latest := await latest_id(session, purged)):
        raise InvalidRequest(
            "unknown_event_id",
            f"no event {after} was ever written here (the latest is {latest}): is this the "
            "same database?",
            latest=latest,
        )


async def read(
    session: AsyncSession,
    *,
    after: int | None,
    dag_id: str | None = None,
    teams: Collection[str] = (),
    limit: int = READ_LIMIT,
    through: int | None = None,
    check_resume: bool = True,
    settle: float = 0.0,
) -> list[EventRecord]:
    """Up to ``limit`` events after ``after`` (None: the oldest kept), oldest first, those
    a follower of ``teams`` filtering on ``dag_id`` may see; ``through`` bounds the ids.
    ``check_resume=False``: ``after`` is known good (the feed's own poll). ``settle``:
    seconds to wait, at most, for committed events still held back by older writing
    transactions (PostgreSQL), so a caller reading right after its own change sees it."""
    deadline = time.monotonic() + settle
    while True:
        records = await _select(session, after, dag_id, teams, limit, through)
        if (
            len(records) == limit
            or time.monotonic() >= deadline
            or not await _held_back(session, after, through)
        ):
            break
        await asyncio.sleep(_SETTLE_STEP)
    if check_resume:
        # After the rows, not before: a purge that committed in between (each statement
        # sees the latest commits) is then seen here, instead of leaving a silent gap.
        await check_resume_point(session, after)
    return records


# How often a settling read looks again (older writing transactions are short).
_SETTLE_STEP = 0.01


async def _held_back(session: AsyncSession, after: int | None, through: int | None) -> bool:
    """Whether committed events after ``after`` are not final yet (PostgreSQL only)."""
    if not _on_postgresql(session):
        return False
    stmt = select(Event.id).where(Event.id >= _PG_FINAL_BELOW, *_between(after, through))
    return await session.scalar(stmt.limit(1)) is not None


def _between(after: int | None, through: int | None) -> list[ColumnElement[bool]]:
    """Ids after ``after`` and up to ``through`` (None: no bound)."""
    bounds = [] if after is None else [Event.id > after]
    return bounds if through is None else [*bounds, Event.id <= through]


async def _select(
    session: AsyncSession,
    after: int | None,
    dag_id: str | None,
    teams: Collection[str],
    limit: int,
    through: int | None,
) -> list[EventRecord]:
    stmt = (
        select(*_COLUMNS).where(*_final(session), *_between(after, through))
        .order_by(Event.id).limit(limit)
    )
    if dag_id is not None:
        stmt = stmt.where(Event.dag_id == dag_id)
    if teams:
        stmt = stmt.where(Event.team.in_(teams))
    return _records(await session.execute(stmt))


async def follow(
    sessions: async_sessionmaker[AsyncSession],
    *,
    after: int | None,
    dag_id: str | None = None,
    teams: Collection[str] = (),
    poll_interval: float = 0.25,
) -> AsyncIterator[EventRecord]:
    """Every event after ``after`` and then each new one as it is committed, by polling
    the database (the CLI's ``events --follow`` on the database host; the server shares
    one poll among its followers: ``services.event_feed``)."""
    cursor = after
    while True:
        async with sessions() as session:
            # Every event up to the latest readable one is final, so a read bounded by
            # it leaves nothing behind the cursor, filtered or not.
            latest = await latest_id(session)
            batch = await read(session, after=cursor, dag_id=dag_id, teams=teams, through=latest)
        for record in batch:
            yield record
        full = len(batch) == READ_LIMIT
        cursor = batch[-1].id if full else latest
        if not full:
            await asyncio.sleep(poll_interval)


async def purge(session: AsyncSession, retention: timedelta) -> int:
    """Delete events older than ``retention``; how many. The horizon moves with them."""
    cutoff = utcnow() - retention
    # Final events only: one still held back may yet be joined by a lower id.
    newest_old = await session.scalar(
        select(func.max(Event.id)).where(Event.at < cutoff, *_final(session))
    )
    if newest_old is None:
        return 0
    deleted = await session.execute(delete(Event).where(Event.id <= newest_old))
    # Only ever raised: replicas purging at once must not lower it.
    await session.execute(
        upsert(
            session, EventHorizon, {"id": 1, "purged_through": newest_old},
            conflict=["id"], update=["purged_through"],
            where=EventHorizon.purged_through < newest_old,
        )
    )
    await session.commit()
    return int(deleted.rowcount or 0)

