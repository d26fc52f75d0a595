"""Operators with their keys, for the control API's tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from taskgate.runtime import Runtime
from taskgate.services import operators
from taskgate.services.operators import Role
from tests.support.api import bearer

MakeKey = Callable[..., Awaitable[dict[str, str]]]


@pytest.fixture
def operator_key(runtime: Runtime) -> MakeKey:
    """``await operator_key(role, *teams)`` -> the Authorization header of a new operator."""
    made = 0

    async def make(role: Role = Role.ADMIN, *teams: str) -> dict[str, str]:
        nonlocal made
        made += 1
        async with runtime.sessionmaker() as session:
            new = await operators.add_operator(session, f"op{made}", role, teams)
        return bearer(new.key)

    return make
