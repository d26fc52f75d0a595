"""``INSERT ... ON CONFLICT`` for the two backends: ``upsert`` (DO UPDATE: concurrent
writers of the same row both succeed, last write wins, in one statement), and each
dialect's own ``insert`` for other conflict clauses (``dialect_insert``)."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.dml import Insert

# The dialect's module is imported on first use: a CLI command on SQLite does not load
# PostgreSQL's.
_DIALECTS = {"postgresql": "sqlalchemy.dialects.postgresql", "sqlite": "sqlalchemy.dialects.sqlite"}


def dialect_insert(dialect: str) -> Callable[..., Insert]:
    """The ``insert`` of ``dialect`` (``sqlite`` or ``postgresql``), the one with
    ``ON CONFLICT``."""
    try:
        return import_module(_DIALECTS[dialect]).insert  # type: ignore[no-any-return]
    except KeyError:
        raise ValueError(f"taskgate supports SQLite and PostgreSQL, not {dialect}") from None


def upsert(
    session: AsyncSession,
    model: type[Any],
    values: dict[str, Any],
    *,
    conflict: list[str],
    update: list[str],
    where: Any = None,
) -> Insert:
    """An insert of ``values`` that updates ``update`` columns when ``conflict`` columns
    clash (only where ``where`` holds, if given)."""
    stmt = dialect_insert(session.get_bind().dialect.name)(model).values(**values)
    return stmt.on_conflict_do_update(
        index_elements=conflict,
        set_={column: stmt.excluded[column] for column in update},
        where=where,
    )
