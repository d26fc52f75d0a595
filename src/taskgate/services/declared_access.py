"""Declared access: what a DAG's tasks may read, as the DAG declares it.

A declaration lists variable keys, connection ids (exact, or glob patterns as
``fnmatch`` reads them: ``etl_*``) and other DAGs whose XComs the tasks may read, for
every task of the DAG and, optionally, for single tasks; a task may read the union of
its DAG's lines and its own. A DAG with a declaration reads only what it declares (and,
within that, still only its team's and global entries: ``services.access``); a DAG
without one keeps the team rule alone, unless the server requires declarations
(``TASKGATE_REQUIRE_DECLARED_ACCESS``), in which case it reads no variable, no
connection and no other DAG's XComs. A DAG's own XComs are always readable: they are
how its tasks pass data.

It is stored as JSON on the DAG's row, so the token gate's lookup of a TI
(``token_standing``) reads it with the rest of the TI's standing: a change reaches a
running task on every replica when that lookup's cache entry expires (at most
``TASKGATE_TOKEN_STANDING_CACHE_SECONDS``, 1 s by default).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.db.models import ID_LENGTH, Dag
from taskgate.services import events
from taskgate.services.errors import InvalidInput, NotFound

_KINDS = ("variables", "connections", "xcom_from")


class Entry(StrEnum):
    """The kinds of stored entry a task reads by name (and the read audit records)."""

    VARIABLE = "variable"
    CONNECTION = "connection"


@dataclass(frozen=True)
class Allowance:
    """What one task may read: patterns of variable keys and connection ids, and the
    DAGs (exact ids) whose XComs it may read besides its own DAG's."""

    variables: tuple[str, ...] = ()
    connections: tuple[str, ...] = ()
    xcom_from: tuple[str, ...] = ()

    def may_read(self, entry: Entry, name: str) -> bool:
        patterns = self.variables if entry is Entry.VARIABLE else self.connections
        return any(fnmatchcase(name, pattern) for pattern in patterns)

    def may_read_xcoms_of(self, dag_id: str) -> bool:
        return dag_id in self.xcom_from

    def __or__(self, other: Allowance) -> Allowance:
        return Allowance(
            *(_union(getattr(self, kind), getattr(other, kind)) for kind in _KINDS)
        )

    def as_dict(self) -> dict[str, list[str]]:
        return {kind: list(getattr(self, kind)) for kind in _KINDS}

    @classmethod
    def from_dict(cls, data: Mapping[str, Iterable[str]]) -> Allowance:
        return cls(*(_union((), data.get(kind, ())) for kind in _KINDS))


# A DAG without a declaration on a server that requires one.
NOTHING = Allowance()


@dataclass(frozen=True)
class Declaration:
    """A DAG's declaration: ``dag`` for every task, ``tasks`` for single tasks."""

    dag: Allowance = NOTHING
    tasks: Mapping[str, Allowance] = field(default_factory=dict)

    def for_task(self, task_id: str) -> Allowance:
        own = self.tasks.get(task_id)
        return self.dag if own is None else self.dag | own

    def replace(self, task_id: str | None, allowance: Allowance) -> Declaration:
        """This declaration with the lines of ``task_id`` (None: every task) replaced."""
        if task_id is None:
            return Declaration(allowance, self.tasks)
        return Declaration(self.dag, {**self.tasks, task_id: allowance})

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.dag.as_dict(),
            "tasks": {task: allowance.as_dict() for task, allowance in sorted(self.tasks.items())},
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Declaration:
        data = json.loads(text)
        tasks = {task: Allowance.from_dict(lines) for task, lines in data.get("tasks", {}).items()}
        return cls(Allowance.from_dict(data), tasks)


# What a DAG without a declaration shows (``declaration`` answers None for it).
NO_DECLARATION = Declaration()


def _union(first: Iterable[str], second: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys([*first, *second]))


@lru_cache(maxsize=4096)
def allowance_of(stored: str | None, task_id: str, required: bool) -> Allowance | None:
    """What ``task_id`` of a DAG whose stored declaration is ``stored`` may read; None:
    no declaration, the team rule alone (``NOTHING`` when ``required``). Cached: the same
    few declarations are read for every request."""
    if stored is None:
        return NOTHING if required else None
    return Declaration.from_json(stored).for_task(task_id)


async def declaration(session: AsyncSession, dag_id: str) -> Declaration | None:
    """The DAG's declaration; None: it has none (NotFound: no such DAG)."""
    dag = await _dag(session, dag_id)
    return None if dag.access is None else Declaration.from_json(dag.access)


async def declare(
    session: AsyncSession,
    dag_id: str,
    allowance: Allowance,
    *,
    task_id: str | None = None,
    actor: str = events.LOCAL_ACTOR,
) -> Declaration:
    """Set what every task of the DAG (``task_id`` None) or one task may read, replacing
    what was declared for it before; the DAG then has a declaration."""
    _check(allowance)
    dag = await _dag(session, dag_id)
    current = NO_DECLARATION if dag.access is None else Declaration.from_json(dag.access)
    updated = current.replace(task_id, allowance)
    dag.access = updated.to_json()
    await events.commit(session, actor, [
        events.operator_action(
            "dag.access", dag_id, dag_id=dag_id, team=dag.team, task_id=task_id,
            **allowance.as_dict(),
        )
    ])
    return updated


async def undeclare(session: AsyncSession, dag_id: str, *, actor: str = events.LOCAL_ACTOR) -> None:
    """Remove the DAG's declaration: back to the team rule (or to nothing, when the server
    requires declarations)."""
    dag = await _dag(session, dag_id)
    dag.access = None
    await events.commit(session, actor, [
        events.operator_action("dag.access.clear", dag_id, dag_id=dag_id, team=dag.team)
    ])


async def _dag(session: AsyncSession, dag_id: str) -> Dag:
    dag = await session.get(Dag, dag_id)
    if dag is None:
        raise NotFound("not_found", f"DAG '{dag_id}' is not registered")
    return dag


def _check(allowance: Allowance) -> None:
    for kind in _KINDS:
        for entry in getattr(allowance, kind):
            if not entry or len(entry) > ID_LENGTH:
                raise InvalidInput(
                    "invalid_declaration",
                    f"{kind}: {entry!r} must be 1 to {ID_LENGTH} characters",
                )
