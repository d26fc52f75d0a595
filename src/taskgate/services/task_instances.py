"""Task instance lifecycle as the worker drives it: start, heartbeat, report state.

Every transition is one conditional ``UPDATE ... WHERE state IN (...)``: the database, not
process memory, decides which of several concurrent requests wins. Only when the update
matches no row do we read the row, to answer 404 or 409 with the reason.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    and_,
    bindparam,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.direct import DirectStatement
from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import (
    DagRun,
    RenderedTaskInstanceFields,
    TaskInstance,
    TaskReschedule,
    UsedWorkloadToken,
    XCom,
    utcnow,
)
from taskgate.db.upsert import upsert
from taskgate.services import dag_runs
from taskgate.services.errors import Conflict, NotFound
from taskgate.services.states import SKIPPABLE, STARTABLE, TERMINAL, TIState
from taskgate.services.token_standing import REUSED, revoked


def ti_not_found(ti_id: uuid.UUID) -> NotFound:
    return NotFound("not_found", f"Task Instance {ti_id} not found")


async def get_task_instance(session: AsyncSession, ti_id: uuid.UUID) -> TaskInstance:
    ti = await session.get(TaskInstance, ti_id)
    if ti is None:
        raise ti_not_found(ti_id)
    return ti


async def _transition(
    session: AsyncSession, ti_id: uuid.UUID, *conditions: Any, **values: Any
) -> bool:
    stmt = (
        update(TaskInstance)
        .where(TaskInstance.id == ti_id, *conditions)
        .values(updated_at=utcnow(), **values)
        .returning(TaskInstance.id)
        .execution_options(synchronize_session=False)
    )
    return (await session.execute(stmt)).first() is not None


@dataclass(frozen=True)
class RunContext:
    ti: TaskInstance
    dag_run: DagRun
    xcom_keys_to_clear: list[str]
    task_reschedule_count: int = 0
    restarted: bool = False

    @property
    def should_retry(self) -> bool:
        """Whether a failure of this try may be reported as up_for_retry."""
        if self.restarted:
            return True
        return self.ti.max_tries > 0 and self.ti.try_number <= self.ti.max_tries


async def start(
    session: AsyncSession,
    ti_id: uuid.UUID,
    *,
    hostname: str,
    unixname: str,
    pid: int,
    start_date: datetime,
    workload: tuple[str, float] | None = None,
) -> RunContext:
    """queued/restarting -> running. An identical repeat from the same process is accepted.

    ``workload`` is the (jti, expiry) of the workload token used: it is recorded in the same
    transaction as the transition, and a token whose jti is already recorded is refused,
    whatever state the TI is in now. The expiry must include the validator's clock leeway:
    the record must outlive every moment the token could still validate.
    """
    if workload is not None:
        await _spend_workload_token(session, ti_id, *workload)
    previous = (
        await session.execute(select(TaskInstance.state).where(TaskInstance.id == ti_id))
    ).scalar_one_or_none()
    if previous is None:
        raise ti_not_found(ti_id)
    started = await _transition(
        session,
        ti_id,
        TaskInstance.state.in_(STARTABLE),
        state=TIState.RUNNING,
        hostname=hostname,
        unixname=unixname,
        pid=pid,
        start_date=start_date,
        end_date=None,
        last_heartbeat_at=utcnow(),
    )
    ti = await get_task_instance(session, ti_id)
    if not started:
        same_process = (ti.hostname, ti.unixname, ti.pid) == (hostname, unixname, pid)
        if not (ti.state == TIState.RUNNING and same_process):
            raise Conflict(
                "invalid_state",
                "TI was not in a state where it could be marked as running",
                previous_state=ti.state,
            )
    dag_run = await _dag_run_of(session, ti)
    # A new try starts clean: the XComs of an earlier try of this TI are removed, and their
    # keys returned so the worker can drop anything it cached. A TI resuming after deferral
    # continues its try and keeps them.
    keys: list[str] = []
    if ti.next_method is None:
        mine = _own_xcoms(ti)
        keys = sorted(set((await session.execute(select(XCom.key).where(mine))).scalars()))
        if keys and started:
            await session.execute(delete(XCom).where(mine))
    reschedules = await _reschedule_count(session, ti)
    await session.commit()
    return RunContext(ti, dag_run, keys, reschedules, restarted=previous == TIState.RESTARTING)


async def _reschedule_count(session: AsyncSession, ti: TaskInstance) -> int:
    """How often the current try was rescheduled (a sensor's poke count so far)."""
    stmt = select(func.count()).where(
        TaskReschedule.ti_id == ti.id, TaskReschedule.try_number == ti.try_number
    )
    return (await session.execute(stmt)).scalar_one()


async def first_reschedule_start(
    session: AsyncSession, ti_id: uuid.UUID, try_number: int
) -> datetime | None:
    """When the first reschedule of the try began (what a rescheduling sensor times out
    from); None when the try was never rescheduled."""
    stmt = (
        select(TaskReschedule.start_date)
        .where(TaskReschedule.ti_id == ti_id, TaskReschedule.try_number == try_number)
        .order_by(TaskReschedule.id)
        .limit(1)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def _spend_workload_token(
    session: AsyncSession, ti_id: uuid.UUID, jti: str, expires_at: float
) -> None:
    now = time.time()
    await session.execute(delete(UsedWorkloadToken).where(UsedWorkloadToken.expires_at < now))
    try:
        await session.execute(
            insert(UsedWorkloadToken).values(jti=jti, ti_id=ti_id, expires_at=expires_at)
        )
    except IntegrityError:
        await session.rollback()
        raise Conflict("token_reused", REUSED) from None


def _own_xcoms(ti: TaskInstance) -> Any:
    return and_(
        XCom.dag_id == ti.dag_id,
        XCom.run_id == ti.run_id,
        XCom.task_id == ti.task_id,
        XCom.map_index == ti.map_index,
    )


_TI = TaskInstance.__table__
_BEAT_COLUMNS = {"ti_id": _TI.c.id, "b_hostname": _TI.c.hostname, "b_pid": _TI.c.pid,
                 "b_now": _TI.c.last_heartbeat_at, "b_iat": _TI.c.tokens_not_before}
# The heartbeats of one statement: a row per heartbeat, numbered from 1.
_BEATS = (
    func.unnest(*(bindparam(name, type_=ARRAY(col.type)) for name, col in _BEAT_COLUMNS.items()))
    .table_valued(*(column(name, col.type) for name, col in _BEAT_COLUMNS.items()),
                  with_ordinality="n")
    .render_derived(name="beat")
)
# The heartbeat is the most frequent request of all: one UPDATE built once, sent on the
# driver connection (taskgate.db.direct); on PostgreSQL the heartbeats of one turn of the
# event loop go together (taskgate.db.group_commit), as one UPDATE of all their rows.
# Measured, SQLAlchemy's session and execution path were most of its cost, and on
# PostgreSQL the round trips. It is also the route's token gate (ti:gate-in-write): it
# writes only for a token issued at or after the TI's tokens_not_before, so a heartbeat
# is one statement, and a revocation holds from the moment it is committed.
def _beat(value: Any) -> Any:
    """The heartbeat's UPDATE, its values taken from ``value(name)``."""
    return (
        update(_TI)
        .where(
            _TI.c.id == value("ti_id"),
            _TI.c.state == TIState.RUNNING,
            _TI.c.hostname == value("b_hostname"),
            _TI.c.pid == value("b_pid"),
            or_(_TI.c.tokens_not_before.is_(None), _TI.c.tokens_not_before <= value("b_iat")),
        )
        .values(last_heartbeat_at=value("b_now"), updated_at=value("b_now"))
    )


_HEARTBEAT = DirectStatement(
    _beat(bindparam),
    many=_beat(lambda name: _BEATS.c[name]).returning(_BEATS.c.n),
    many_key="ti_id",
)


class TokenRevoked(Exception):
    """The heartbeat's token was issued before its TI's ``tokens_not_before``."""


async def heartbeat(
    writes: GroupCommit, ti_id: uuid.UUID, *, hostname: str, pid: int, token_iat: float
) -> None:
    """Only the running process that started the TI may heartbeat it, with a token that
    was not revoked (issued at ``token_iat``; else ``TokenRevoked``). Committed before it
    returns (on PostgreSQL together with the other heartbeats of the same turn)."""
    params = {"ti_id": ti_id, "b_hostname": hostname, "b_pid": pid, "b_now": utcnow(),
              "b_iat": token_iat}
    if await writes.rowcount(_HEARTBEAT, params) == 1:
        return
    # Refused: say why (revoked, not running, or running elsewhere), from a fresh read.
    async with writes.engine.connect() as conn:
        found = (
            await conn.execute(
                select(_TI.c.state, _TI.c.hostname, _TI.c.pid, _TI.c.tokens_not_before).where(
                    _TI.c.id == ti_id
                )
            )
        ).first()
    if found is None:
        raise ti_not_found(ti_id)
    if revoked(token_iat, found.tokens_not_before):
        raise TokenRevoked
    if found.state != TIState.RUNNING:
        raise Conflict(
            "not_running",
            "TI is no longer in the running state and task should terminate",
            current_state=found.state,
        )
    raise Conflict(
        "running_elsewhere",
        f"TI is already running elsewhere: hostname {found.hostname!r}, pid {found.pid}",
        current_hostname=found.hostname,
        current_pid=found.pid,
    )


async def report_state(
    session: AsyncSession,
    ti_id: uuid.UUID,
    state: TIState,
    *,
    end_date: datetime | None = None,
    rendered_map_index: str | None = None,
    reschedule_date: datetime | None = None,
    **values: Any,
) -> None:
    """running -> ``state``. Terminal states, up_for_retry, deferred, up_for_reschedule
    (which records a reschedule of the current try, ``reschedule_date`` being when the
    task asked to run again).

    Reporting the state the TI is already in is an idempotent repeat: accepted, and
    nothing is written (a worker that retries a lost answer must not fail).
    """
    if rendered_map_index is not None:
        values["rendered_map_index"] = rendered_map_index
    if state in TERMINAL or state in (TIState.UP_FOR_RETRY, TIState.UP_FOR_RESCHEDULE):
        values["end_date"] = end_date or utcnow()
    if state not in (TIState.DEFERRED, TIState.AWAITING_INPUT):
        # Only a deferral's resume point survives into the next /run; anything else that
        # leaves running ends it, so a later try starts from execute(), not a stale resume.
        values.update(next_method=None, next_kwargs=None)
    changed = await _transition(
        session, ti_id, TaskInstance.state == TIState.RUNNING, state=state, **values
    )
    if changed:
        if state == TIState.UP_FOR_RESCHEDULE:
            ti = await get_task_instance(session, ti_id)
            session.add(
                TaskReschedule(
                    ti_id=ti_id,
                    try_number=ti.try_number,
                    start_date=ti.start_date or values["end_date"],
                    end_date=values["end_date"],
                    reschedule_date=reschedule_date or values["end_date"],
                )
            )
        await session.commit()
        return
    ti = await get_task_instance(session, ti_id)
    if ti.state == state:
        return
    raise Conflict(
        "invalid_state",
        f"TI was not in the running state so it cannot be updated to {state}",
        previous_state=ti.state,
    )


async def set_rendered_fields(
    session: AsyncSession, ti_id: uuid.UUID, fields: dict[str, Any]
) -> None:
    await get_task_instance(session, ti_id)
    row = {"ti_id": ti_id, "rendered_fields": fields, "updated_at": utcnow()}
    stmt = upsert(
        session,
        RenderedTaskInstanceFields,
        row,
        conflict=["ti_id"],
        update=["rendered_fields", "updated_at"],
    )
    await session.execute(stmt)
    await session.commit()


async def get_rendered_fields(session: AsyncSession, ti_id: uuid.UUID) -> dict[str, Any] | None:
    row = await session.get(RenderedTaskInstanceFields, ti_id)
    return row.rendered_fields if row else None


async def set_rendered_map_index(session: AsyncSession, ti_id: uuid.UUID, value: str) -> None:
    if not await _transition(session, ti_id, rendered_map_index=value):
        raise ti_not_found(ti_id)
    await session.commit()


async def skip_downstream(
    session: AsyncSession, ti_id: uuid.UUID, tasks: list[str | tuple[str, int]]
) -> int:
    """Mark the listed not-yet-started TIs of the same run ``skipped``; returns how many."""
    ti = await get_task_instance(session, ti_id)
    plain = [t for t in tasks if isinstance(t, str)]
    mapped = [tuple(t) for t in tasks if not isinstance(t, str)]
    matches = [TaskInstance.task_id.in_(plain)] if plain else []
    if mapped:
        matches.append(tuple_(TaskInstance.task_id, TaskInstance.map_index).in_(mapped))
    if not matches:
        return 0
    stmt = (
        update(TaskInstance)
        .where(
            TaskInstance.dag_id == ti.dag_id,
            TaskInstance.run_id == ti.run_id,
            TaskInstance.state.in_(SKIPPABLE),
            or_(*matches),
        )
        .values(state=TIState.SKIPPED, end_date=utcnow(), updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    count = (await session.execute(stmt)).rowcount
    await session.commit()
    return count


async def _dag_run_of(session: AsyncSession, ti: TaskInstance) -> DagRun:
    stmt = select(DagRun).where(DagRun.dag_id == ti.dag_id, DagRun.run_id == ti.run_id)
    return (await session.execute(stmt)).scalar_one()


async def previous_successful_dag_run(session: AsyncSession, ti_id: uuid.UUID) -> DagRun | None:
    ti = await get_task_instance(session, ti_id)
    current = await _dag_run_of(session, ti)
    if current.logical_date is None:
        return None  # nothing is "before" a run without a logical date
    return await dag_runs.latest_before(session, ti.dag_id, current.logical_date, state="success")
