"""Control API: the XComs tasks pushed (as ``taskgate xcoms``).

Security policy: an operator key with role ``reader``; only XComs of DAGs of the
operator's teams.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Query, Security

from taskgate.api.deps import DbSession
from taskgate.api.params import MAX_INT, Identifier
from taskgate.security.operator_auth import ControlRoute, CurrentOperator, require_operator
from taskgate.services import control, xcoms

router = APIRouter(
    prefix="/xcoms",
    tags=["XComs"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)


@router.get("")
async def list_xcoms(
    operator: CurrentOperator,
    session: DbSession,
    dag_id: str | None = None,
    run_id: str | None = None,
    task_id: str | None = None,
    key: str | None = None,
) -> list[dict[str, Any]]:
    """Stored XComs with their values, by DAG, run, task, map index and key."""
    found = await xcoms.list_stored(session, dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)
    if operator.teams:
        teams = {d.dag_id: d.team for d in await control.list_dags(session)}
        found = [x for x in found if operator.sees(teams.get(x.dag_id))]
    return [asdict(x) for x in found]


@router.get("/{dag_id}/{run_id}/{task_id}/{key}")
async def get_xcom(
    dag_id: Identifier,
    run_id: Identifier,
    task_id: Identifier,
    key: Identifier,
    operator: CurrentOperator,
    session: DbSession,
    map_index: int = Query(-1, ge=-1, le=MAX_INT),
) -> Any:
    """One XCom's value (JSON, as the task pushed it)."""
    operator.check_team(await control.dag_team(session, dag_id), f"DAG {dag_id}")
    return await xcoms.get_stored(session, xcoms.XComRef(dag_id, run_id, task_id, key),
                                  map_index=map_index)
