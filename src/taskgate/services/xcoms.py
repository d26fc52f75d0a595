"""XComs: values passed between tasks, kept as the JSON document the worker sent.

A task instance writes and deletes only its own XComs and reads XComs of its own DAG
(``services.access``). Pushing a key again replaces the value.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import XCom
from taskgate.services import access
from taskgate.services.errors import NotFound


def _where(dag_id: str, run_id: str, task_id: str, key: str) -> list[Any]:
    return [XCom.dag_id == dag_id, XCom.run_id == run_id, XCom.task_id == task_id, XCom.key == key]


def _not_found(dag_id: str, run_id: str, task_id: str, key: str, **extra: Any) -> NotFound:
    return NotFound(
        "not_found",
        f"XCom with key '{key}' not found for task '{task_id}' in DAG run '{run_id}' "
        f"of DAG '{dag_id}'",
        **extra,
    )


async def push(
    session: AsyncSession,
    requester: access.Requester,
    dag_id: str,
    run_id: str,
    task_id: str,
    key: str,
    value: Any,
    *,
    map_index: int = -1,
) -> None:
    if not access.can_write_xcom(requester, dag_id, run_id, task_id, map_index):
        raise access.denied("write XComs of another task instance")
    where = [*_where(dag_id, run_id, task_id, key), XCom.map_index == map_index]
    await session.execute(delete(XCom).where(*where))
    session.add(
        XCom(
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            key=key,
            value=json.dumps(value),
        )
    )
    await session.commit()


async def pull(
    session: AsyncSession,
    requester: access.Requester,
    dag_id: str,
    run_id: str,
    task_id: str,
    key: str,
    *,
    map_index: int = -1,
) -> Any:
    if not access.can_read_xcom(requester, dag_id):
        raise access.denied(f"read XComs of DAG '{dag_id}'")
    stmt = select(XCom.value).where(*_where(dag_id, run_id, task_id, key), XCom.map_index == map_index)
    raw = (await session.execute(stmt)).scalar_one_or_none()
    if raw is None:
        raise _not_found(dag_id, run_id, task_id, key, map_index=map_index)
    return json.loads(raw)


async def count(
    session: AsyncSession, requester: access.Requester, dag_id: str, run_id: str, task_id: str, key: str
) -> int:
    """How many map indexes pushed ``key`` (the HEAD answer)."""
    if not access.can_read_xcom(requester, dag_id):
        raise access.denied(f"read XComs of DAG '{dag_id}'")
    stmt = select(func.count()).select_from(XCom).where(*_where(dag_id, run_id, task_id, key))
    return (await session.execute(stmt)).scalar_one()


async def sequence(
    session: AsyncSession, requester: access.Requester, dag_id: str, run_id: str, task_id: str, key: str
) -> list[Any]:
    """All values of ``key`` across map indexes, in map-index order."""
    if not access.can_read_xcom(requester, dag_id):
        raise access.denied(f"read XComs of DAG '{dag_id}'")
    stmt = (
        select(XCom.value)
        .where(*_where(dag_id, run_id, task_id, key))
        .order_by(XCom.map_index)
    )
    return [json.loads(raw) for raw in (await session.execute(stmt)).scalars()]


async def remove(
    session: AsyncSession,
    requester: access.Requester,
    dag_id: str,
    run_id: str,
    task_id: str,
    key: str,
    *,
    map_index: int = -1,
) -> None:
    if not access.can_write_xcom(requester, dag_id, run_id, task_id, map_index):
        raise access.denied("delete XComs of another task instance")
    where = [*_where(dag_id, run_id, task_id, key), XCom.map_index == map_index]
    await session.execute(delete(XCom).where(*where))
    await session.commit()
