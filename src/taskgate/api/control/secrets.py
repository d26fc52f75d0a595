"""Control API: variables and connections (the data tasks read, with their teams).

Security policy: an operator key; reading needs ``reader``, writing and deleting
``admin``. Secret values (a variable's value, a connection's password and extra) are
shown to admins only; others see that a password is set (``***``) but not a variable's
value. Teams: an operator with teams sees and manages its teams' entries only; global
entries (no team) are for operators without teams.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, Security
from pydantic import BaseModel, Field, model_validator

from taskgate.api.deps import DbSession, RuntimeDep
from taskgate.db.models import ID_LENGTH
from taskgate.security.operator_auth import (
    ControlRoute,
    CurrentOperator,
    OperatorPrincipal,
    require_operator,
)
from taskgate.services import connections, variables, views
from taskgate.services.errors import NotFound
from taskgate.services.operators import Role

router = APIRouter(
    tags=["Variables and connections"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)
ADMIN = [Security(require_operator, scopes=["role:admin"])]


class VariableBody(BaseModel):
    value: str
    description: str | None = None
    team: str | None = Field(None, max_length=ID_LENGTH)


class ConnectionBody(BaseModel):
    """A connection by its URI (as ``taskgate connections add --uri``) or by its fields."""

    uri: str | None = None
    conn_type: str | None = None
    host: str | None = None
    schema_: str | None = Field(None, alias="schema")
    login: str | None = None
    password: str | None = None
    port: int | None = Field(None, ge=0, le=65535)
    extra: str | None = None
    team: str | None = Field(None, max_length=ID_LENGTH)

    @model_validator(mode="after")
    def uri_or_type(self) -> ConnectionBody:
        if (self.uri is None) == (self.conn_type is None):
            raise ValueError("give either uri or conn_type (with the other fields)")
        return self

    def fields(self) -> connections.ConnectionFields:
        if self.uri is not None:
            return connections.parse_uri(self.uri)
        assert self.conn_type is not None
        return connections.ConnectionFields(
            self.conn_type, self.host, self.schema_, self.login, self.password, self.port,
            self.extra,
        )


def _variable(operator: OperatorPrincipal, value: variables.VariableValue) -> dict[str, Any]:
    shown = views.variable(value)
    if operator.role is not Role.ADMIN:
        del shown["value"]
    return shown


def _hidden(what: str) -> NotFound:
    # Another team's entry is answered as missing, so its existence is not revealed.
    return NotFound("not_found", f"{what} not found")


def _connection(operator: OperatorPrincipal, value: connections.ConnectionValue) -> dict[str, Any]:
    admin = operator.role is Role.ADMIN
    shown = views.connection(value, reveal=admin)
    if not admin and shown["extra"] is not None:
        shown["extra"] = "***"  # encrypted at rest like the password: a secret too
    return shown


@router.get("/variables")
async def list_variables(
    operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> list[dict[str, Any]]:
    """Variables this operator may see (values for admins only)."""
    found = await variables.list_all(session, runtime.secrets)
    return [_variable(operator, v) for v in found if operator.sees(v.team)]


@router.get("/variables/{key}")
async def get_variable(
    key: str, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> dict[str, Any]:
    found = await variables.get(session, runtime.secrets, key)
    if not operator.sees(found.team):
        raise _hidden(f"Variable {key}")
    return _variable(operator, found)


@router.put("/variables/{key}", dependencies=ADMIN)
async def put_variable(
    key: str, body: VariableBody, operator: CurrentOperator, session: DbSession,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Create or replace a variable (as ``taskgate variables set``)."""
    operator.check_team(body.team, f"variable {key}")
    await _check_existing(operator, variables.get(session, runtime.secrets, key), f"Variable {key}")
    await variables.put(session, runtime.secrets, key, body.value, description=body.description,
                        team=body.team)
    return views.variable(await variables.get(session, runtime.secrets, key))


@router.delete("/variables/{key}", status_code=204, dependencies=ADMIN)
async def delete_variable(
    key: str, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> Response:
    await _check_existing(operator, variables.get(session, runtime.secrets, key), f"Variable {key}",
                          missing_is_fine=False)
    await variables.delete_key(session, key)
    return Response(status_code=204)


@router.get("/connections")
async def list_connections(
    operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> list[dict[str, Any]]:
    """Connections this operator may see (passwords and extras for admins only)."""
    found = await connections.list_all(session, runtime.secrets)
    return [_connection(operator, c) for c in found if operator.sees(c.team)]


@router.get("/connections/{conn_id}")
async def get_connection(
    conn_id: str, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> dict[str, Any]:
    found = await connections.get(session, runtime.secrets, conn_id)
    if not operator.sees(found.team):
        raise _hidden(f"Connection with ID {conn_id}")
    return _connection(operator, found)


@router.put("/connections/{conn_id}", dependencies=ADMIN)
async def put_connection(
    conn_id: str, body: ConnectionBody, operator: CurrentOperator, session: DbSession,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Create or replace a connection (as ``taskgate connections add``)."""
    operator.check_team(body.team, f"connection {conn_id}")
    await _check_existing(operator, connections.get(session, runtime.secrets, conn_id),
                          f"Connection with ID {conn_id}")
    saved = await connections.put(session, runtime.secrets, conn_id, body.fields(), team=body.team)
    return views.connection(saved, reveal=True)


@router.delete("/connections/{conn_id}", status_code=204, dependencies=ADMIN)
async def delete_connection(
    conn_id: str, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> Response:
    await _check_existing(operator, connections.get(session, runtime.secrets, conn_id),
                          f"Connection with ID {conn_id}", missing_is_fine=False)
    await connections.delete_id(session, conn_id)
    return Response(status_code=204)


async def _check_existing(
    operator: OperatorPrincipal, lookup: Any, what: str, *, missing_is_fine: bool = True
) -> None:
    """An entry of another team is not this operator's to replace or delete."""
    try:
        existing = await lookup
    except NotFound:
        if missing_is_fine:
            return
        raise
    if not operator.sees(existing.team):
        raise _hidden(what)
