"""Control API: DAGs and their runs.

Security policy: an operator key; reading DAGs and their declared access needs
``reader``, registering one or declaring its access ``admin``, creating a run
``operator``. Teams: an operator with teams sees and acts on DAGs of its teams only.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security
from pydantic import BaseModel, Field

from taskgate.api.deps import DbSession
from taskgate.api.params import MAX_INT, Identifier
from taskgate.db.models import ID_LENGTH
from taskgate.security.operator_auth import ControlRoute, CurrentOperator, require_operator
from taskgate.services import control, declared_access, views
from taskgate.wire.http import TokenBinding

router = APIRouter(
    prefix="/dags",
    tags=["DAGs"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)


class DagBody(BaseModel):
    team: str | None = Field(None, max_length=ID_LENGTH)
    # dpop: the DAG's tasks run on key-bound tokens only; None: unchanged (new DAG: the
    # server's TASKGATE_TOKEN_BINDING).
    token_binding: TokenBinding | None = None


class AccessBody(BaseModel):
    """What every task of the DAG (no ``task_id``) or one task may read; replaces what
    was declared for it."""

    task_id: str | None = Field(None, min_length=1, max_length=ID_LENGTH)
    variables: list[str] = Field(default_factory=list, max_length=1000)
    connections: list[str] = Field(default_factory=list, max_length=1000)
    xcom_from: list[str] = Field(default_factory=list, max_length=1000)


class RunBody(BaseModel):
    run_id: str = Field(min_length=1, max_length=ID_LENGTH)
    tasks: list[str] = Field(min_length=1)
    max_tries: int = Field(0, ge=0, le=MAX_INT)
    mapped: dict[str, int] = Field(default_factory=dict)  # lengths checked by the service


@router.get("")
async def list_dags(operator: CurrentOperator, session: DbSession) -> list[dict[str, Any]]:
    """The DAGs this operator may see."""
    return [views.dag(d) for d in await control.list_dags(session) if operator.sees(d.team)]


@router.put("/{dag_id}", dependencies=[Security(require_operator, scopes=["role:admin"])])
async def put_dag(
    dag_id: Identifier, body: DagBody, operator: CurrentOperator, session: DbSession
) -> dict[str, Any]:
    """Register a DAG with its team and token binding (repeating it is fine; changing the
    team is 409; a token binding given replaces the DAG's)."""
    operator.check_team(body.team, f"DAG {dag_id}")
    return views.dag(await control.add_dag(
        session, dag_id, team=body.team, token_binding=body.token_binding, actor=operator.name
    ))


@router.post(
    "/{dag_id}/runs",
    status_code=201,
    dependencies=[Security(require_operator, scopes=["role:operator"])],
)
async def create_run(
    dag_id: Identifier, body: RunBody, operator: CurrentOperator, session: DbSession
) -> dict[str, Any]:
    """A run with its task instances, all ``scheduled`` (as ``taskgate runs create``)."""
    operator.check_team(await control.dag_team(session, dag_id), f"DAG {dag_id}")
    created = await control.create_run(
        session, dag_id, body.run_id, body.tasks, max_tries=body.max_tries, mapped=body.mapped,
        actor=operator.name,
    )
    return views.created_run(dag_id, body.run_id, created.task_instances)


@router.get("/{dag_id}/access")
async def get_access(
    dag_id: Identifier, operator: CurrentOperator, session: DbSession
) -> dict[str, Any]:
    """What the DAG's tasks may read (``declared`` false: the team rule alone)."""
    operator.check_team(await control.dag_team(session, dag_id), f"DAG {dag_id}")
    return views.dag_access(dag_id, await declared_access.declaration(session, dag_id))


@router.put("/{dag_id}/access", dependencies=[Security(require_operator, scopes=["role:admin"])])
async def put_access(
    dag_id: Identifier, body: AccessBody, operator: CurrentOperator, session: DbSession
) -> dict[str, Any]:
    """Declare what every task of the DAG, or ``task_id``, may read (as ``taskgate dags
    add DAG --allow-...``); running tasks see it within a second."""
    operator.check_team(await control.dag_team(session, dag_id), f"DAG {dag_id}")
    allowance = declared_access.Allowance.from_dict(body.model_dump())
    declared = await declared_access.declare(
        session, dag_id, allowance, task_id=body.task_id, actor=operator.name
    )
    return views.dag_access(dag_id, declared)


@router.delete(
    "/{dag_id}/access", dependencies=[Security(require_operator, scopes=["role:admin"])]
)
async def delete_access(
    dag_id: Identifier, operator: CurrentOperator, session: DbSession
) -> dict[str, Any]:
    """Remove the DAG's declaration (back to the team rule)."""
    operator.check_team(await control.dag_team(session, dag_id), f"DAG {dag_id}")
    await declared_access.undeclare(session, dag_id, actor=operator.name)
    return views.dag_access(dag_id, None)
