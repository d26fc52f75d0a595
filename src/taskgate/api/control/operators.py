"""Control API: operators and their keys (as ``taskgate operators``).

Security policy: an operator key with role ``admin`` and no teams. An admin of some
teams cannot make or revoke operators: it could otherwise make a key for teams it does
not have.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security
from pydantic import BaseModel, Field

from taskgate.api.deps import DbSession
from taskgate.api.params import Identifier
from taskgate.db.models import ID_LENGTH
from taskgate.security.operator_auth import (
    ALL_TEAMS_SCOPE,
    ControlRoute,
    CurrentOperator,
    require_operator,
)
from taskgate.services import operators, views
from taskgate.services.errors import InvalidInput
from taskgate.services.operators import Role

router = APIRouter(
    prefix="/operators",
    tags=["Operators"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:admin", ALL_TEAMS_SCOPE])],
)


class OperatorBody(BaseModel):
    name: str = Field(min_length=1, max_length=100)
    role: Role
    teams: list[str] = Field(default_factory=list, max_length=100)



@router.get("")
async def list_operators(session: DbSession) -> list[dict[str, Any]]:
    """Every operator (never a key)."""
    return [views.operator(o) for o in await operators.list_operators(session)]


@router.post("", status_code=201)
async def add_operator(
    body: OperatorBody, operator: CurrentOperator, session: DbSession
) -> dict[str, Any]:
    """A new operator; its key is in this answer and nowhere else, ever."""
    for team in body.teams:
        if not team or len(team) > ID_LENGTH:
            raise InvalidInput("invalid_team", f"not a team name: {team!r}")
    made = await operators.add_operator(
        session, body.name, body.role, body.teams, actor=operator.name
    )
    return views.new_operator(made)


@router.delete("/{name}")
async def revoke_operator(name: Identifier, operator: CurrentOperator, session: DbSession) -> dict[str, Any]:
    """Refuse the operator's key from its next request on (every replica)."""
    return views.operator(await operators.revoke_operator(session, name, actor=operator.name))
