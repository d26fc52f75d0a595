"""Operators: a key shown once and stored only as a hash, checked in constant time,
refused once revoked; roles in order."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import select

from taskgate.db.models import Operator
from taskgate.services import operators
from taskgate.services.errors import Conflict, InvalidInput, NotFound
from taskgate.services.operators import Role


async def test_a_new_key_authenticates_its_operator_and_only_its_hash_is_stored(runtime) -> None:
    async with runtime.sessionmaker() as session:
        made = await operators.add_operator(session, "ci", Role.OPERATOR, ["etl", "etl", "ml"])
    assert made.key.startswith("tgk_")
    async with runtime.sessionmaker() as session:
        row = await session.scalar(select(Operator).where(Operator.name == "ci"))
        found = await operators.authenticate(session, made.key)
    assert found is not None and (found.name, found.role, found.teams) == ("ci", "operator", ["etl", "ml"])
    secret = made.key.split("_", 2)[2]
    assert row.key_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert made.key not in repr(row.__dict__)  # nothing but the hash


@pytest.mark.parametrize("change", ["secret", "key_id", "prefix", "empty", "truncated"])
async def test_a_key_not_exactly_issued_is_refused(runtime, change: str) -> None:
    async with runtime.sessionmaker() as session:
        made = await operators.add_operator(session, "ci", Role.READER)
    key = made.key
    forged = {
        "secret": key[:-1] + ("A" if key[-1] != "A" else "B"),
        "key_id": key[:4] + ("0" if key[4] != "0" else "1") + key[5:],
        "prefix": "xyz_" + key[4:],
        "empty": "",
        "truncated": key[:-2],
    }[change]
    async with runtime.sessionmaker() as session:
        assert await operators.authenticate(session, forged) is None


async def test_a_revoked_operator_is_refused_from_then_on(runtime) -> None:
    async with runtime.sessionmaker() as session:
        made = await operators.add_operator(session, "ci", Role.ADMIN)
    async with runtime.sessionmaker() as session:
        revoked = await operators.revoke_operator(session, "ci")
    assert revoked.revoked_at is not None
    async with runtime.sessionmaker() as session:
        assert await operators.authenticate(session, made.key) is None
        with pytest.raises(NotFound):
            await operators.revoke_operator(session, "nobody")


async def test_names_are_checked_and_used_once(runtime) -> None:
    async with runtime.sessionmaker() as session:
        await operators.add_operator(session, "ci", Role.READER)
    async with runtime.sessionmaker() as session:
        with pytest.raises(Conflict):
            await operators.add_operator(session, "ci", Role.ADMIN)
        with pytest.raises(InvalidInput):
            await operators.add_operator(session, "has space", Role.ADMIN)


def test_roles_are_ordered() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.ADMIN.allows(Role.READER)
    assert Role.OPERATOR.allows(Role.READER) and not Role.OPERATOR.allows(Role.ADMIN)
    assert Role.READER.allows(Role.READER) and not Role.READER.allows(Role.OPERATOR)
