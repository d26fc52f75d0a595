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

from taskgate.db.models import XCom, utcnow
from taskgate.db.upsert import upsert
from taskgate.services import access
from taskgate.services.errors import NotFound


@dataclass(frozen=True, slots=True)
class XComRef:
    """One XCom key of one task in one run (across its map indexes)."""

    dag_id: str
    run_id: str
    task_id: str
    key: str

    def where(self, map_index: int | None = None) -> list[Any]:
        clauses = [
            XCom.dag_id == self.dag_id,
            XCom.run_id == self.run_id,
            XCom.task_id == self.task_id,
            XCom.key == self.key,
        ]
        return clauses if map_index is None else [*clauses, XCom.map_index == map_index]


def _check_read(requester: access.Requester, ref: XComRef) -> None:
    if not access.can_read_xcom(requester, ref.dag_id):
        raise access.denied(f"read XComs of DAG '{ref.dag_id}'")


def _check_write(requester: access.Requester, ref: XComRef, map_index: int) -> None:
    if not access.can_write_xcom(requester, ref.dag_id, ref.run_id, ref.task_id, map_index):
        raise access.denied("write or delete XComs of another task instance")


async def push(
    session: AsyncSession, requester: access.Requester, ref: XComRef, value: Any, *, map_index: int = -1
) -> None:
    _check_write(requester, ref, map_index)
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


async def pull(
    session: AsyncSession, requester: access.Requester, ref: XComRef, *, map_index: int = -1
) -> Any:
    _check_read(requester, ref)
    raw = (await session.execute(select(XCom.value).where(*ref.where(map_index)))).scalar_one_or_none()
    if raw is None:
        raise NotFound(
            "not_found",
            f"XCom with key='{ref.key}' map_index={map_index} not found for task "
            f"'{ref.task_id}' in DAG run '{ref.run_id}' of '{ref.dag_id}'",
        )
    return json.loads(raw)


async def count(session: AsyncSession, requester: access.Requester, ref: XComRef) -> int:
    """How many map indexes pushed the key (the HEAD answer)."""
    _check_read(requester, ref)
    stmt = select(func.count()).select_from(XCom).where(*ref.where())
    return (await session.execute(stmt)).scalar_one()


async def sequence(session: AsyncSession, requester: access.Requester, ref: XComRef) -> list[Any]:
    """All values of the key across map indexes, in map-index order."""
    _check_read(requester, ref)
    stmt = select(XCom.value).where(*ref.where()).order_by(XCom.map_index)
    return [json.loads(raw) for raw in (await session.execute(stmt)).scalars()]


async def remove(
    session: AsyncSession, requester: access.Requester, ref: XComRef, *, map_index: int = -1
) -> None:
    _check_write(requester, ref, map_index)
    await session.execute(delete(XCom).where(*ref.where(map_index)))
    await session.commit()
