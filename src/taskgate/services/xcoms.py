"""XComs: values passed between tasks, kept as the JSON document the worker sent.

A task instance writes and deletes only its own XComs and reads XComs of its own DAG
(``services.access``). Pushing a key again replaces the value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import DagRun, XCom, utcnow
from taskgate.db.upsert import upsert
from taskgate.services import access
from taskgate.services.errors import InvalidRequest, NotFound

# What a pushed sequence may hold to be mapped over downstream (Airflow's
# ``[core] max_map_length`` default).
MAX_MAP_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class XComRef:
    """One XCom key of one task in one run (across its map indexes)."""

    dag_id: str
    run_id: str
    task_id: str
    key: str

    def where(self, map_index: int | None = None, *, any_run: bool = False) -> list[Any]:
        clauses = [XCom.dag_id == self.dag_id, XCom.task_id == self.task_id, XCom.key == self.key]
        if not any_run:
            clauses.append(XCom.run_id == self.run_id)
        return clauses if map_index is None else [*clauses, XCom.map_index == map_index]


def _check_read(requester: access.Requester, ref: XComRef) -> None:
    access.check_xcom_read(requester, ref.dag_id)


def _check_write(requester: access.Requester, ref: XComRef, map_index: int) -> None:
    if not access.can_write_xcom(requester, ref.dag_id, ref.run_id, ref.task_id, map_index):
        raise access.denied(
            "write or delete XComs of another task instance", access.OTHER_TASK_INSTANCE
        )


async def push(
    session: AsyncSession,
    requester: access.Requester,
    ref: XComRef,
    value: Any,
    *,
    map_index: int = -1,
    mapped_length: int | None = None,
) -> None:
    """Store ``value``. ``mapped_length`` is what the worker announces when downstream tasks
    map over this value; taskgate has no scheduler that expands them, so it is only checked."""
    _check_write(requester, ref, map_index)
    if mapped_length is not None and mapped_length > MAX_MAP_LENGTH:
        raise InvalidRequest(
            "unmappable_return_value_length",
            f"pushed value is too large to map as a downstream's dependency "
            f"({mapped_length} > {MAX_MAP_LENGTH})",
        )
    row = {
        "dag_id": ref.dag_id,
        "run_id": ref.run_id,
        "task_id": ref.task_id,
        "map_index": map_index,
        "key": ref.key,
        "value": json.dumps(value),
        "timestamp": utcnow(),
    }
    conflict = ["dag_id", "run_id", "task_id", "key", "map_index"]
    await session.execute(
        upsert(session, XCom, row, conflict=conflict, update=["value", "timestamp"])
    )
    await session.commit()


def _not_found(ref: XComRef, where: str) -> NotFound:
    return NotFound(
        "not_found",
        f"XCom with key='{ref.key}' {where} not found for task "
        f"'{ref.task_id}' in DAG run '{ref.run_id}' of '{ref.dag_id}'",
    )


async def pull(
    session: AsyncSession,
    requester: access.Requester,
    ref: XComRef,
    *,
    map_index: int = -1,
    offset: int | None = None,
    include_prior_dates: bool = False,
) -> Any:
    """One value. With ``offset``, the offset-th value across map indexes (negative: from
    the end), ignoring ``map_index``. With ``include_prior_dates``, the latest value of the
    task in this run or an earlier run of the DAG."""
    _check_read(requester, ref)
    if offset is not None:
        values = await sequence(session, requester, ref)
        try:
            return values[offset]
        except IndexError:
            raise _not_found(ref, f"offset={offset}") from None
    stmt = await _values(
        session, ref, map_index=map_index, include_prior_dates=include_prior_dates
    )
    raw = (await session.execute(stmt.limit(1))).scalars().first()
    if raw is None:
        raise _not_found(ref, f"map_index={map_index}")
    return json.loads(raw)


async def _values(
    session: AsyncSession,
    ref: XComRef,
    *,
    map_index: int | None = None,
    include_prior_dates: bool = False,
) -> Any:
    """SELECT of the key's values in map-index order; with ``include_prior_dates`` over
    every run of the DAG not after ``ref``'s run (by logical date, else ``run_after``), the
    latest run first."""
    if not include_prior_dates:
        return select(XCom.value).where(*ref.where(map_index)).order_by(XCom.map_index)
    when = func.coalesce(DagRun.logical_date, DagRun.run_after)
    current = (
        await session.execute(
            select(when).where(DagRun.dag_id == ref.dag_id, DagRun.run_id == ref.run_id)
        )
    ).scalar_one_or_none()
    stmt = select(XCom.value).join(
        DagRun, (DagRun.dag_id == XCom.dag_id) & (DagRun.run_id == XCom.run_id)
    )
    stmt = stmt.where(*ref.where(map_index, any_run=True))
    stmt = stmt.where(when <= current) if current is not None else stmt.where(XCom.run_id == ref.run_id)
    return stmt.order_by(when.desc(), XCom.timestamp.desc(), XCom.map_index)


async def count(session: AsyncSession, requester: access.Requester, ref: XComRef) -> int:
    """How many map indexes pushed the key (the HEAD answer)."""
    _check_read(requester, ref)
    stmt = select(func.count()).select_from(XCom).where(*ref.where())
    return (await session.execute(stmt)).scalar_one()


async def sequence(
    session: AsyncSession,
    requester: access.Requester,
    ref: XComRef,
    *,
    include_prior_dates: bool = False,
) -> list[Any]:
    """All values of the key across map indexes, in map-index order."""
    _check_read(requester, ref)
    stmt = await _values(session, ref, include_prior_dates=include_prior_dates)
    return [json.loads(raw) for raw in (await session.execute(stmt)).scalars()]


async def remove(
    session: AsyncSession, requester: access.Requester, ref: XComRef, *, map_index: int = -1
) -> None:
    _check_write(requester, ref, map_index)
    await session.execute(delete(XCom).where(*ref.where(map_index)))
    await session.commit()


# Control plane ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoredXCom:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    value: Any


async def list_stored(
    session: AsyncSession,
    *,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    key: str | None = None,
) -> list[StoredXCom]:
    """Every stored XCom matching the filters, by DAG, run, task, map index and key."""
    filters = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "key": key}
    stmt = select(XCom).where(
        *(getattr(XCom, name) == value for name, value in filters.items() if value is not None)
    )
    stmt = stmt.order_by(XCom.dag_id, XCom.run_id, XCom.task_id, XCom.map_index, XCom.key)
    return [
        StoredXCom(x.dag_id, x.run_id, x.task_id, x.map_index, x.key, json.loads(x.value))
        for x in (await session.execute(stmt)).scalars()
    ]


async def get_stored(session: AsyncSession, ref: XComRef, *, map_index: int = -1) -> Any:
    raw = (await session.execute(select(XCom.value).where(*ref.where(map_index)))).scalar_one_or_none()
    if raw is None:
        raise _not_found(ref, f"map_index={map_index}")
    return json.loads(raw)
