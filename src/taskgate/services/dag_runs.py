"""DAG runs as a task instance may read them: its own DAG's runs only (``services.access``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import DagRun
from taskgate.services import access
from taskgate.services.errors import NotFound


async def get(
    session: AsyncSession, requester: access.Requester, dag_id: str, run_id: str
) -> DagRun:
    access.check_dag_read(requester, dag_id, "DAG runs")
    dag_run = (
        await session.execute(
            select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
    ).scalar_one_or_none()
    if dag_run is None:
        raise NotFound(
            "not_found", f"Dag run with dag_id '{dag_id}' and run_id '{run_id}' was not found"
        )
    return dag_run


async def count(
    session: AsyncSession,
    requester: access.Requester,
    dag_id: str,
    *,
    logical_dates: Sequence[datetime] | None = None,
    run_ids: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
) -> int:
    access.check_dag_read(requester, dag_id, "DAG runs")
    stmt = select(func.count()).select_from(DagRun).where(DagRun.dag_id == dag_id)
    if logical_dates:
        stmt = stmt.where(DagRun.logical_date.in_(logical_dates))
    if run_ids:
        stmt = stmt.where(DagRun.run_id.in_(run_ids))
    if states:
        stmt = stmt.where(DagRun.state.in_(states))
    return (await session.execute(stmt)).scalar_one()


async def previous(
    session: AsyncSession,
    requester: access.Requester,
    dag_id: str,
    logical_date: datetime,
    *,
    state: str | None = None,
) -> DagRun | None:
    """The latest run of the DAG whose logical date is before ``logical_date``."""
    access.check_dag_read(requester, dag_id, "DAG runs")
    return await latest_before(session, dag_id, logical_date, state=state)


async def latest_before(
    session: AsyncSession, dag_id: str, logical_date: datetime, *, state: str | None = None
) -> DagRun | None:
    """``previous`` without the access check, for callers that already made it."""
    stmt = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.logical_date < logical_date)
    if state:
        stmt = stmt.where(DagRun.state == state)
    stmt = stmt.order_by(DagRun.logical_date.desc(), DagRun.id.desc()).limit(1)
    return (await session.execute(stmt)).scalar_one_or_none()
