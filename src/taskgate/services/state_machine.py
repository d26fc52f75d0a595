"""The task instance's state machine: queue, start, heartbeat, report a state, skip,
revoke its tokens. Each function is one transition on a session (or, for the heartbeat,
on the group commit), committed before it returns.

Every transition is one conditional ``UPDATE ... WHERE state IN (...)``: the database, not
process memory, decides which of several concurrent requests wins. Only when the update
matches no row do we read the row, to answer 404 or 409 with the reason. Each one that
changes a state or revokes tokens commits through ``events.commit``, with its event.

Callers go through ``services.lifecycle.Lifecycle``, which adds what must follow a
transition (the token gate's cache, token issue); nothing else calls these.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, insert, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.direct import DirectStatement
from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import DagRun, TaskInstance, TaskReschedule, UsedWorkloadToken, XCom, utcnow
from taskgate.services import events
from taskgate.services.errors import Conflict, TokenRefused
from taskgate.services.states import (
    NEW_TRY_FROM,
    QUEUEABLE,
    SKIPPABLE,
    STARTABLE,
    TERMINAL,
    TIState,
)
from taskgate.services.task_instances import (
    TI_IDENTITY,
    dag_run_of,
    get_task_instance,
    reschedule_count,
    ti_not_found,
    update_ti,
)
from taskgate.services.token_standing import revoked, watermark
from taskgate.tokens import Refusal


async def queue(
    session: AsyncSession, ti_id: uuid.UUID, *, actor: str = events.LOCAL_ACTOR
) -> TaskInstance:
    """Queue a TI for a worker. From scheduled or up_for_retry this begins a new try
    (``try_number`` + 1); a deferred or rescheduled TI resumes its try. Terminal and
    running TIs cannot be queued. Every token issued for the TI before now stops
    counting (its ``tokens_not_before`` moves to now)."""
    ti = await get_task_instance(session, ti_id)
    previous = TIState(ti.state)
    if previous not in QUEUEABLE:
        raise Conflict(
            "invalid_state", f"TI is {previous} and cannot be queued", previous_state=previous
        )
    new_try = previous in NEW_TRY_FROM
    queued = await update_ti(
        session,
        ti_id,
        TaskInstance.state == previous,
        state=TIState.QUEUED,
        queued_at=utcnow(),
        try_number=TaskInstance.try_number + (1 if new_try else 0),
        hostname=None,
        unixname=None,
        pid=None,
        tokens_not_before=watermark(time.time()),
    )
    if not queued:
        await session.rollback()
        raise Conflict("invalid_state", "TI changed state while being queued")
    await events.commit(session, actor, [events.ti_state(queued, TIState.QUEUED, previous=previous)])
    await session.refresh(ti)
    return ti


async def revoke_tokens(
    session: AsyncSession, ti_id: uuid.UUID, *, actor: str = events.LOCAL_ACTOR
) -> float:
    """Invalidate every token issued for the TI up to now; returns the watermark.

    The watermark is the next millisecond: a token issued in the same millisecond as the
    revoke is refused too. The call returns once that millisecond has passed, so tokens
    issued after it returns are valid.
    """
    mark = watermark(time.time()) + 0.001
    revoked_ti = await update_ti(session, ti_id, tokens_not_before=mark)
    if revoked_ti is None:
        raise ti_not_found(ti_id)
    await events.commit(session, actor, [events.ti_revoked(revoked_ti, mark)])
    await asyncio.sleep(max(0.0, mark - time.time()))
    return mark


@dataclass(frozen=True)
class RunContext:
    ti: TaskInstance
    dag_run: DagRun
    xcom_keys_to_clear: list[str]
    task_reschedule_count: int = 0
    restarted: bool = False

    # What the worker is told of its TI, besides the run.
    max_tries = property(lambda self: self.ti.max_tries)
    next_method = property(lambda self: self.ti.next_method)
    next_kwargs = property(lambda self: self.ti.next_kwargs)
    start_date = property(lambda self: self.ti.start_date)

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
    token_expires_at: float | None = None,
) -> RunContext:
    """queued/restarting -> running. An identical repeat from the same process is accepted.

    ``workload`` is the (jti, expiry) of the workload token used: it is recorded in the same
    transaction as the transition, and a token whose jti is already recorded is refused,
    whatever state the TI is in now. The expiry must include the validator's clock leeway:
    the record must outlive every moment the token could still validate.
    ``token_expires_at``: the expiry of the execution token issued for this start, noted
    on the TI in the same transaction.
    """
    if workload is not None:
        await _spend_workload_token(session, ti_id, *workload)
    previous = (
        await session.execute(select(TaskInstance.state).where(TaskInstance.id == ti_id))
    ).scalar_one_or_none()
    if previous is None:
        raise ti_not_found(ti_id)
    # Conditional on the state just read, so that the event names the state left.
    noted = {} if token_expires_at is None else {"token_expires_at": token_expires_at}
    started = previous in STARTABLE and await update_ti(
        session,
        ti_id,
        TaskInstance.state == previous,
        state=TIState.RUNNING,
        hostname=hostname,
        unixname=unixname,
        pid=pid,
        start_date=start_date,
        end_date=None,
        last_heartbeat_at=utcnow(),
        **noted,  # in the same statement: no UPDATE of its own
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
    if token_expires_at is not None and not started:
        ti.token_expires_at = token_expires_at
    dag_run = await dag_run_of(session, ti)
    # A new try starts clean: the XComs of an earlier try of this TI are removed, and their
    # keys returned so the worker can drop anything it cached. A TI resuming after deferral
    # continues its try and keeps them.
    keys: list[str] = []
    if ti.next_method is None:
        mine = _own_xcoms(ti)
        keys = sorted(set((await session.execute(select(XCom.key).where(mine))).scalars()))
        if keys and started:
            await session.execute(delete(XCom).where(mine))
    reschedules = await reschedule_count(session, ti)
    changes = [events.ti_state(ti, TIState.RUNNING, previous=previous)] if started else []
    await events.commit(session, events.task_actor(ti_id), changes)
    return RunContext(ti, dag_run, keys, reschedules, restarted=previous == TIState.RESTARTING)


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
        raise TokenRefused(Refusal.WORKLOAD_TOKEN_REUSED) from None


def _own_xcoms(ti: TaskInstance) -> Any:
    return and_(
        XCom.dag_id == ti.dag_id,
        XCom.run_id == ti.run_id,
        XCom.task_id == ti.task_id,
        XCom.map_index == ti.map_index,
    )


_TI = TaskInstance.__table__


def _beat(value: Any) -> Any:
    """The heartbeat's UPDATE, its values taken from ``value(name)``. It writes only for
    the running process that started the TI, and only for a token issued at or after the
    TI's ``tokens_not_before``: it is the route's token gate (``ti:gate-in-write``,
    explained in ``taskgate.security.routing``)."""
    return (
        update(_TI)
        .where(
            _TI.c.id == value("ti_id"),
            _TI.c.state == TIState.RUNNING,
            _TI.c.hostname == value("beat_hostname"),
            _TI.c.pid == value("beat_pid"),
            or_(_TI.c.tokens_not_before.is_(None), _TI.c.tokens_not_before <= value("token_iat")),
        )
        .values(last_heartbeat_at=value("now"), updated_at=value("now"))
    )


# The most frequent request of all: one statement built once and sent on the driver
# connection (taskgate.db.direct); on PostgreSQL the heartbeats of one turn of the event
# loop are one statement (taskgate.db.group_commit).
_HEARTBEAT = DirectStatement.batched(
    _beat,
    {
        "ti_id": _TI.c.id.type,
        "beat_hostname": _TI.c.hostname.type,
        "beat_pid": _TI.c.pid.type,
        "now": _TI.c.last_heartbeat_at.type,
        "token_iat": _TI.c.tokens_not_before.type,
    },
    key="ti_id",
)


_TOKEN_ISSUED = DirectStatement(
    update(_TI)
    .where(
        _TI.c.id == bindparam("ti_id", type_=_TI.c.id.type),
        or_(_TI.c.token_expires_at.is_(None), _TI.c.token_expires_at < bindparam("exp")),
    )
    .values(token_expires_at=bindparam("exp", type_=_TI.c.token_expires_at.type),
            updated_at=bindparam("now", type_=_TI.c.updated_at.type)),
    lock_order="ti_id",
)


async def token_issued(writes: GroupCommit, ti_id: uuid.UUID, *, exp: float) -> None:
    """Note that an execution token of the TI expiring at ``exp`` was issued (kept only
    if it is the latest expiry so far)."""
    await writes.rowcount(_TOKEN_ISSUED, {"ti_id": ti_id, "exp": exp, "now": utcnow()})


async def heartbeat(
    writes: GroupCommit, ti_id: uuid.UUID, *, hostname: str, pid: int, token_iat: float
) -> None:
    """Only the running process that started the TI may heartbeat it, with a token that
    was not revoked (issued at ``token_iat``; else ``TokenRefused``). Committed before it
    returns (on PostgreSQL together with the other heartbeats of the same turn)."""
    params = {"ti_id": ti_id, "beat_hostname": hostname, "beat_pid": pid, "now": utcnow(),
              "token_iat": token_iat}
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
    state, current_hostname, current_pid, tokens_not_before = found
    if revoked(token_iat, tokens_not_before):
        raise TokenRefused(Refusal.REVOKED)
    if state != TIState.RUNNING:
        raise Conflict(
            "not_running",
            "TI is no longer in the running state and task should terminate",
            current_state=state,
        )
    raise Conflict(
        "running_elsewhere",
        f"TI is already running elsewhere: hostname {current_hostname!r}, pid {current_pid}",
        current_hostname=current_hostname,
        current_pid=current_pid,
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
    changed = await update_ti(
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
        change = events.ti_state(changed, state, previous=TIState.RUNNING)
        await events.commit(session, events.task_actor(ti_id), [change])
        return
    ti = await get_task_instance(session, ti_id)
    if ti.state == state:
        return
    raise Conflict(
        "invalid_state",
        f"TI was not in the running state so it cannot be updated to {state}",
        previous_state=ti.state,
    )


async def skip_downstream(
    session: AsyncSession, ti_id: uuid.UUID, tasks: list[str | tuple[str, int]]
) -> list[uuid.UUID]:
    """Mark the listed not-yet-started TIs of the same run ``skipped``; returns their ids."""
    ti = await get_task_instance(session, ti_id)
    plain = [t for t in tasks if isinstance(t, str)]
    mapped = [tuple(t) for t in tasks if not isinstance(t, str)]
    matches = [TaskInstance.task_id.in_(plain)] if plain else []
    if mapped:
        matches.append(tuple_(TaskInstance.task_id, TaskInstance.map_index).in_(mapped))
    if not matches:
        return []
    # One update per state left, so that each event names the state its TI left.
    changes, skipped = [], []
    for previous in sorted(SKIPPABLE):
        stmt = (
            update(TaskInstance)
            .where(
                TaskInstance.dag_id == ti.dag_id,
                TaskInstance.run_id == ti.run_id,
                TaskInstance.state == previous,
                or_(*matches),
            )
            .values(state=TIState.SKIPPED, end_date=utcnow(), updated_at=utcnow())
            .returning(*TI_IDENTITY)
            .execution_options(synchronize_session=False)
        )
        for row in await session.execute(stmt):
            changes.append(events.ti_state(row, TIState.SKIPPED, previous=previous))
            skipped.append(row.id)
    await events.commit(session, events.task_actor(ti_id), changes)
    return skipped
