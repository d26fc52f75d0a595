"""Variables: read and written by task instances under the access policy, and managed by
the control plane (CLI), which is trusted and bypasses it."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import Variable
from taskgate.services import access
from taskgate.services.errors import NotFound


def _not_found(key: str) -> NotFound:
    return NotFound("not_found", f"Variable with key '{key}' not found")


async def read(session: AsyncSession, requester: access.Requester, key: str) -> Variable:
    variable = await session.get(Variable, key)
    if variable is None:
        raise _not_found(key)
    if not access.can_read_entry(requester, variable.team):
        raise access.denied(f"read variable '{key}'")
    return variable


async def write(
    session: AsyncSession,
    requester: access.Requester,
    key: str,
    value: str | None,
    description: str | None,
) -> None:
    existing = await session.get(Variable, key)
    if existing is not None and not access.can_write_entry(requester, existing.team):
        raise access.denied(f"write variable '{key}'")
    await put(session, key, value, description=description, team=requester.team)


async def remove(session: AsyncSession, requester: access.Requester, key: str) -> None:
    existing = await session.get(Variable, key)
    if existing is None:
        return  # deleting what is not there is done
    if not access.can_write_entry(requester, existing.team):
        raise access.denied(f"delete variable '{key}'")
    await session.delete(existing)
    await session.commit()


# Control plane ---------------------------------------------------------------------------


async def put(
    session: AsyncSession,
    key: str,
    value: str | None,
    *,
    description: str | None = None,
    team: str | None = None,
) -> Variable:
    variable = await session.get(Variable, key)
    if variable is None:
        variable = Variable(key=key)
        session.add(variable)
    variable.value, variable.description, variable.team = value, description, team
    await session.commit()
    return variable


async def get(session: AsyncSession, key: str) -> Variable:
    variable = await session.get(Variable, key)
    if variable is None:
        raise _not_found(key)
    return variable


async def list_all(session: AsyncSession) -> Sequence[Variable]:
    return (await session.execute(select(Variable).order_by(Variable.key))).scalars().all()


async def delete_key(session: AsyncSession, key: str) -> bool:
    result = await session.execute(delete(Variable).where(Variable.key == key))
    await session.commit()
    return result.rowcount > 0
