"""Connections: read by task instances under the access policy; managed by the control plane.

``parse_uri`` reads the Airflow connection URI form:
``conn-type://login:password@host:port/schema?extra_key=value`` (``__extra__=<json>`` carries
a whole JSON extra).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import Connection
from taskgate.services import access
from taskgate.services.errors import InvalidInput, NotFound


def _not_found(conn_id: str) -> NotFound:
    return NotFound("not_found", f"Connection with ID {conn_id} not found")


async def read(session: AsyncSession, requester: access.Requester, conn_id: str) -> Connection:
    connection = await session.get(Connection, conn_id)
    if connection is None:
        raise _not_found(conn_id)
    if not access.can_read_entry(requester, connection.team):
        raise access.denied(f"read connection '{conn_id}'")
    return connection


@dataclass(frozen=True)
class ConnectionFields:
    conn_type: str
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None


def parse_uri(uri: str) -> ConnectionFields:
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError as exc:
        raise InvalidInput("invalid_uri", f"Invalid connection URI: {exc}") from None
    if not parts.scheme:
        raise InvalidInput("invalid_uri", "Connection URI needs a scheme (the connection type)")
    query = parse_qsl(parts.query, keep_blank_values=True)
    extra: str | None = None
    if query:
        raw = dict(query)
        if "__extra__" in raw:
            extra = raw["__extra__"]
            try:
                json.loads(extra)
            except ValueError:
                raise InvalidInput("invalid_uri", "__extra__ must be a JSON document") from None
        else:
            extra = json.dumps(raw)
    path = parts.path.removeprefix("/")
    return ConnectionFields(
        conn_type=parts.scheme.replace("-", "_"),
        host=unquote(parts.hostname) if parts.hostname else None,
        schema=unquote(path) or None,
        login=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
        port=port,
        extra=extra,
    )


# Control plane ---------------------------------------------------------------------------


async def put(
    session: AsyncSession, conn_id: str, fields: ConnectionFields, *, team: str | None = None
) -> Connection:
    connection = await session.get(Connection, conn_id)
    if connection is None:
        connection = Connection(conn_id=conn_id)
        session.add(connection)
    for name, value in vars(fields).items():
        setattr(connection, name, value)
    connection.team = team
    await session.commit()
    return connection


async def get(session: AsyncSession, conn_id: str) -> Connection:
    connection = await session.get(Connection, conn_id)
    if connection is None:
        raise _not_found(conn_id)
    return connection


async def list_all(session: AsyncSession) -> Sequence[Connection]:
    stmt = select(Connection).order_by(Connection.conn_id)
    return (await session.execute(stmt)).scalars().all()


async def delete_id(session: AsyncSession, conn_id: str) -> bool:
    result = await session.execute(delete(Connection).where(Connection.conn_id == conn_id))
    await session.commit()
    return result.rowcount > 0
