"""Variables: read and written by task instances under the access policy, and managed by
the control plane (CLI), which is trusted and bypasses it. Values are stored encrypted
(``services.secrets``); these functions take and return plaintext."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import Variable, utcnow
from taskgate.db.upsert import upsert
from taskgate.services import access, events, read_audit
from taskgate.services.declared_access import Entry
from taskgate.services.errors import NotFound
from taskgate.services.like import starts_with
from taskgate.services.secrets import SecretBox


@dataclass(frozen=True, slots=True)
class VariableValue:
    key: str
    value: str | None
    description: str | None
    team: str | None


def _not_found(key: str) -> NotFound:
    return NotFound("not_found", f"Variable with key '{key}' not found")


def _row(
    box: SecretBox, key: str, value: str | None, description: str | None, team: str | None
) -> dict[str, object]:
    return {
        "key": key,
        "value": box.seal(value),
        "description": description,
        "team": team,
        "updated_at": utcnow(),
    }


def _plain(box: SecretBox, row: Variable) -> VariableValue:
    return VariableValue(row.key, box.open(row.value), row.description, row.team)


async def read(
    session: AsyncSession,
    box: SecretBox,
    requester: access.Requester,
    key: str,
    audit: read_audit.ReadAudit,
) -> VariableValue:
    """A task's read of a variable: its DAG's declaration, then the team rule; recorded
    in the read audit, allowed or not, before anything is answered."""

    async def checked() -> VariableValue:
        access.check_declared(requester, Entry.VARIABLE, key)
        row = await session.get(Variable, key)
        if row is None:
            raise _not_found(key)
        access.check_entry_read(requester, Entry.VARIABLE, key, row.team)
        return _plain(box, row)

    return await read_audit.audited(audit, session, requester, Entry.VARIABLE, key, checked)


async def write(
    session: AsyncSession,
    box: SecretBox,
    requester: access.Requester,
    key: str,
    value: str | None,
    description: str | None,
) -> None:
    # One statement decides: create the key for the TI's team, or update it only if it
    # already belongs to that team. No read-then-write window for another team to use.
    row = _row(box, key, value, description, requester.team)
    stmt = upsert(
        session,
        Variable,
        row,
        conflict=["key"],
        update=["value", "description", "updated_at"],
        where=Variable.team.is_not_distinct_from(requester.team),
    ).returning(Variable.key)
    written = (await session.execute(stmt)).first()
    await session.commit()
    if written is None:
        raise access.denied(f"write variable '{key}'", access.OTHER_TEAM)


async def remove(session: AsyncSession, requester: access.Requester, key: str) -> None:
    existing = await session.get(Variable, key)
    if existing is None:
        return  # deleting what is not there is done
    if not access.can_write_entry(requester, existing.team):
        raise access.denied(f"delete variable '{key}'", access.OTHER_TEAM)
    await session.delete(existing)
    await session.commit()


async def visible_keys(
    session: AsyncSession,
    requester: access.Requester,
    *,
    prefix: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> tuple[list[str], int]:
    """The keys this TI may read (global and its team's), sorted; and how many there are."""
    readable = Variable.team.is_(None)
    if requester.team is not None:
        readable = readable | (Variable.team == requester.team)
    conditions = [readable]
    if prefix:
        conditions.append(starts_with(Variable.key, prefix))
    total = (await session.execute(select(func.count()).where(*conditions))).scalar_one()
    stmt = select(Variable.key).where(*conditions).order_by(Variable.key).limit(limit).offset(offset)
    return list((await session.execute(stmt)).scalars()), total


# Control plane ---------------------------------------------------------------------------


async def put(
    session: AsyncSession,
    box: SecretBox,
    key: str,
    value: str | None,
    *,
    description: str | None = None,
    team: str | None = None,
    actor: str = events.LOCAL_ACTOR,
) -> None:
    stmt = upsert(
        session,
        Variable,
        _row(box, key, value, description, team),
        conflict=["key"],
        update=["value", "description", "team", "updated_at"],
    )
    await session.execute(stmt)
    await events.commit(session, actor, [events.operator_action("variable.put", key, team=team)])


async def get(session: AsyncSession, box: SecretBox, key: str) -> VariableValue:
    row = await session.get(Variable, key)
    if row is None:
        raise _not_found(key)
    return _plain(box, row)


async def list_all(session: AsyncSession, box: SecretBox) -> list[VariableValue]:
    rows = (await session.execute(select(Variable).order_by(Variable.key))).scalars()
    return [_plain(box, row) for row in rows]


async def delete_key(session: AsyncSession, key: str, *, actor: str = events.LOCAL_ACTOR) -> bool:
    deleted = await session.execute(
        delete(Variable).where(Variable.key == key).returning(Variable.team)
    )
    teams = list(deleted.scalars())
    changes = [events.operator_action("variable.delete", key, team=team) for team in teams]
    await events.commit(session, actor, changes)
    return bool(teams)


async def reencrypt(session: AsyncSession, box: SecretBox) -> int:
    """Re-encrypt every value under the box's first key; returns how many rows."""
    rows = (await session.execute(select(Variable))).scalars().all()
    for row in rows:
        row.value = box.rotate(row.value)
    await session.commit()
    return len(rows)
