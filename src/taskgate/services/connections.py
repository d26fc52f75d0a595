"""Connections: read by task instances under the access policy; managed by the control plane.

``parse_uri`` reads the Airflow connection URI form:
``conn-type://login:password@host:port/schema?extra_key=value`` (``__extra__=<json>`` carries
a whole JSON extra).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import Connection
from taskgate.services import access, events, read_audit
from taskgate.services.declared_access import Entry
from taskgate.services.errors import InvalidInput, NotFound
from taskgate.services.secrets import SecretBox


def _not_found(conn_id: str) -> NotFound:
    return NotFound("not_found", f"Connection with ID {conn_id} not found")


@dataclass(frozen=True)
class ConnectionFields:
    conn_type: str
    host: str | None = None
    schema: str | None = None
    login: str | None = None
    password: str | None = None
    port: int | None = None
    extra: str | None = None


@dataclass(frozen=True)
class ConnectionValue:
    """A stored connection with its secrets (password, extra) decrypted."""

    conn_id: str
    team: str | None
    fields: ConnectionFields


def _plain(box: SecretBox, row: Connection) -> ConnectionValue:
    fields = ConnectionFields(
        conn_type=row.conn_type,
        host=row.host,
        schema=row.schema,
        login=row.login,
        password=box.open(row.password),
        port=row.port,
        extra=box.open(row.extra),
    )
    return ConnectionValue(row.conn_id, row.team, fields)


async def read(
    session: AsyncSession,
    box: SecretBox,
    requester: access.Requester,
    conn_id: str,
    audit: read_audit.ReadAudit,
) -> ConnectionValue:
    """A task's read of a connection: its DAG's declaration, then the team rule;
    recorded in the read audit, allowed or not, before anything is answered."""

    async def checked() -> ConnectionValue:
        access.check_declared(requester, Entry.CONNECTION, conn_id)
        row = await session.get(Connection, conn_id)
        if row is None:
            raise _not_found(conn_id)
        access.check_entry_read(requester, Entry.CONNECTION, conn_id, row.team)
        return _plain(box, row)

    return await read_audit.audited(audit, session, requester, Entry.CONNECTION, conn_id, checked)


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
    session: AsyncSession,
    box: SecretBox,
    conn_id: str,
    fields: ConnectionFields,
    *,
    team: str | None = None,
    actor: str = events.LOCAL_ACTOR,
) -> ConnectionValue:
    row = await session.get(Connection, conn_id)
    if row is None:
        row = Connection(conn_id=conn_id)
        session.add(row)
    for name, value in vars(fields).items():
        setattr(row, name, value)
    row.password, row.extra = box.seal(fields.password), box.seal(fields.extra)
    row.team = team
    await events.commit(
        session, actor, [events.operator_action("connection.put", conn_id, team=team)]
    )
    return ConnectionValue(conn_id, team, fields)


async def get(session: AsyncSession, box: SecretBox, conn_id: str) -> ConnectionValue:
    row = await session.get(Connection, conn_id)
    if row is None:
        raise _not_found(conn_id)
    return _plain(box, row)


async def list_all(session: AsyncSession, box: SecretBox) -> list[ConnectionValue]:
    rows = (await session.execute(select(Connection).order_by(Connection.conn_id))).scalars()
    return [_plain(box, row) for row in rows]


async def delete_id(
    session: AsyncSession, conn_id: str, *, actor: str = events.LOCAL_ACTOR
) -> bool:
    deleted = await session.execute(
        delete(Connection).where(Connection.conn_id == conn_id).returning(Connection.team)
    )
    teams = list(deleted.scalars())
    changes = [events.operator_action("connection.delete", conn_id, team=team) for team in teams]
    await events.commit(session, actor, changes)
    return bool(teams)


async def reencrypt(session: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every password and extra under the box's first key; returns row count."""
    rows = (await session.execute(select(Connection))).scalars().all()
    for row in rows:
        row.password, row.extra = box.rotate(row.password), box.rotate(row.extra)
    await session.commit()
    return len(rows)
