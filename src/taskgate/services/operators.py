"""Operators: who may drive taskgate over the control API, with which role and teams.

An operator's key is ``tgk_<key id>_<secret>``: the key id finds the row, the secret is
checked against its SHA-256 in constant time. The database keeps only that hash; the key
is shown once, when it is made. (A fast hash is right here: the secret is 32 random
bytes, not a password that could be guessed.) A revoked operator is refused from the next
request on, on every replica: the row is read on every request.

Roles are ordered: ``reader`` reads everything but secret values; ``operator`` also
creates runs, queues task instances and revokes tokens; ``admin`` also manages DAGs,
variables, connections and operators. An operator with teams acts only on DAGs of those
teams; one without teams, on all.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import Operator, utcnow
from taskgate.services import events
from taskgate.services.errors import Conflict, InvalidInput, NotFound

KEY_PREFIX = "tgk_"
_KEY = re.compile(r"tgk_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}")


class Role(StrEnum):
    READER = "reader"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class NewOperator:
    operator: Operator
    key: str  # shown once


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def add_operator(
    session: AsyncSession,
    name: str,
    role: Role,
    teams: Sequence[str] = (),
    *,
    actor: str = events.LOCAL_ACTOR,
) -> NewOperator:
    """A new operator and its key. A name is used once (revoked ones included, so that
    the audit trail names one principal)."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(
            "invalid_name", "operator names are 1-100 of A-Z a-z 0-9 _ . @ -, starting "
            "with a letter or digit"
        )
    if await session.get(Operator, name) is not None:
        raise Conflict("operator_exists", f"operator {name!r} already exists")
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    operator = Operator(
        name=name, role=Role(role).value, teams=sorted(set(teams)), key_id=key_id,
        key_hash=_hash(secret),
    )
    session.add(operator)
    added = events.operator_action("operator.add", name, role=operator.role, teams=operator.teams)
    await events.commit(session, actor, [added])
    return NewOperator(operator, f"{KEY_PREFIX}{key_id}_{secret}")


async def list_operators(session: AsyncSession) -> Sequence[Operator]:
    return (await session.execute(select(Operator).order_by(Operator.name))).scalars().all()


async def revoke_operator(
    session: AsyncSession, name: str, *, actor: str = events.LOCAL_ACTOR
) -> Operator:
    """Refuse the operator's key from now on (the row stays, for the record)."""
    operator = await session.get(Operator, name)
    if operator is None:
        raise NotFound("not_found", f"no operator {name!r}")
    if operator.revoked_at is None:
        operator.revoked_at = utcnow()
        await events.commit(session, actor, [events.operator_action("operator.revoke", name)])
    return operator


async def authenticate(session: AsyncSession, key: str) -> Operator | None:
    """The operator whose key this is, if it is one and not revoked."""
    match = _KEY.fullmatch(key)
    if match is None:
        return None
    key_id, secret = match.groups()
    operator = await session.scalar(select(Operator).where(Operator.key_id == key_id))
    if operator is None or not hmac.compare_digest(operator.key_hash, _hash(secret)):
        return None
    return None if operator.revoked_at is not None else operator
