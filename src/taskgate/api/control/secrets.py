"""Control API: variables and connections (the data tasks read, with their teams).

Security policy: an operator key; reading needs ``reader``, writing and deleting
``admin``. Secret values (a variable's value, a connection's password and extra) are
shown to admins only; others see that a password is set (``***``) but not a variable's
value. Teams: an operator with teams sees and manages its teams' entries only; global
entries (no team) are for operators without teams.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, Response, Security
from pydantic import BaseModel, Field, model_validator

from taskgate.api.deps import DbSession, RuntimeDep
from taskgate.api.params import Identifier
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


async def _visible(operator: OperatorPrincipal, lookup: Awaitable[Any], what: str) -> Any:
    """The entry ``lookup`` finds, if it is this operator's to see (else 404)."""
    found = await lookup
    if not operator.sees(found.team):
        raise _hidden(what)
    return found


async def _replaceable(operator: OperatorPrincipal, lookup: Awaitable[Any], what: str) -> None:
    """Nothing there yet, or an entry this operator may see: it may write there."""
    try:
        found = await lookup
    except NotFound:
        return
    if not operator.sees(found.team):
        raise _hidden(what)


@router.get("/variables")
async def list_variables(
    operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> list[dict[str, Any]]:
    """Variables this operator may see (values for admins only)."""
    found = await variables.list_all(session, runtime.secrets)
    return [_variable(operator, v) for v in found if operator.sees(v.team)]


@router.get("/variables/{key}")
async def get_variable(
    key: Identifier, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> dict[str, Any]:
    lookup = variables.get(session, runtime.secrets, key)
    return _variable(operator, await _visible(operator, lookup, f"Variable {key}"))


@router.put("/variables/{key}", dependencies=ADMIN)
async def put_variable(
    key: Identifier, body: VariableBody, operator: CurrentOperator, session: DbSession,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Create or replace a variable (as ``taskgate variables set``)."""
    operator.check_team(body.team, f"variable {key}")
    await _replaceable(operator, variables.get(session, runtime.secrets, key), f"Variable {key}")
    await variables.put(session, runtime.secrets, key, body.value, description=body.description,
                        team=body.team, actor=operator.name)
    return views.variable(await variables.get(session, runtime.secrets, key))


@router.delete("/variables/{key}", status_code=204, dependencies=ADMIN)
async def delete_variable(
    key: Identifier, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> Response:
    await _visible(operator, variables.get(session, runtime.secrets, key), f"Variable {key}")
    await variables.delete_key(session, key, actor=operator.name)
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
    conn_id: Identifier, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> dict[str, Any]:
    lookup = connections.get(session, runtime.secrets, conn_id)
    return _connection(operator, await _visible(operator, lookup, f"Connection {conn_id}"))


@router.put("/connections/{conn_id}", dependencies=ADMIN)
async def put_connection(
    conn_id: Identifier, body: ConnectionBody, operator: CurrentOperator, session: DbSession,
    runtime: RuntimeDep,
) -> dict[str, Any]:
    """Create or replace a connection (as ``taskgate connections add``)."""
    operator.check_team(body.team, f"connection {conn_id}")
    lookup = connections.get(session, runtime.secrets, conn_id)
    await _replaceable(operator, lookup, f"Connection {conn_id}")
    saved = await connections.put(
        session, runtime.secrets, conn_id, body.fields(), team=body.team, actor=operator.name
    )
    return views.connection(saved, reveal=True)


@router.delete("/connections/{conn_id}", status_code=204, dependencies=ADMIN)
async def delete_connection(
    conn_id: Identifier, operator: CurrentOperator, session: DbSession, runtime: RuntimeDep
) -> Response:
    lookup = connections.get(session, runtime.secrets, conn_id)
    await _visible(operator, lookup, f"Connection {conn_id}")
    await connections.delete_id(session, conn_id, actor=operator.name)
    return Response(status_code=204)
