"""Where an operator command acts: on the local database (``LocalBackend``), or through a
server's control API with an operator key (``RemoteBackend``).

Each command asks ``backend()`` for one and prints what it answers: the dicts of
``taskgate.services.views``, which the control API answers too, so a command is written
once and prints the same in both modes. Both backends end a failed command the same way
(``error: <message>`` on stderr, exit 2 for bad input, else 1).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from taskgate.cli.common import fail

SERVER_ENV = "TASKGATE_SERVER"
KEY_ENV = "TASKGATE_OPERATOR_KEY"

Row = dict[str, Any]


@dataclass(frozen=True)
class Target:
    """The global ``--server``/``--key`` options (else ``$TASKGATE_SERVER`` and
    ``$TASKGATE_OPERATOR_KEY``): a server to call, or None for the local database."""

    server: str | None
    key: str | None


# Set by the ``taskgate`` app's callback on every invocation, before any command runs.
_selected: Target | None = None


def select(where: Target) -> None:
    global _selected
    _selected = where


def target() -> Target:
    if _selected is not None:
        return _selected
    # A command function called without the ``taskgate`` app in front of it.
    return Target(os.environ.get(SERVER_ENV) or None, os.environ.get(KEY_ENV) or None)


class Backend(Protocol):
    def add_dag(self, dag_id: str, team: str | None, token_binding: str | None) -> Row: ...
    def list_dags(self) -> list[Row]: ...
    def dag_access(self, dag_id: str) -> Row: ...
    def declare_dag_access(
        self, dag_id: str, task_id: str | None, variables: Sequence[str],
        connections: Sequence[str], xcom_from: Sequence[str],
    ) -> Row: ...
    def clear_dag_access(self, dag_id: str) -> Row: ...
    def create_run(
        self, dag_id: str, run_id: str, tasks: Sequence[str], max_tries: int,
        mapped: dict[str, int],
    ) -> Row: ...
    def list_task_instances(self, dag_id: str | None, state: str | None) -> list[Row]: ...
    def show_task_instance(self, ti_id: str) -> Row: ...
    def queue(self, ti_id: str, airflow: dict[str, Any] | None) -> Row: ...
    def revoke_tokens(self, ti_id: str) -> Row: ...
    def put_variable(
        self, key: str, value: str, description: str | None, team: str | None
    ) -> Row: ...
    def get_variable(self, key: str) -> Row: ...
    def list_variables(self) -> list[Row]: ...
    def delete_variable(self, key: str) -> bool: ...
    def put_connection(self, conn_id: str, uri: str, team: str | None) -> Row: ...
    def get_connection(self, conn_id: str, reveal: bool) -> Row: ...
    def list_connections(self) -> list[Row]: ...
    def delete_connection(self, conn_id: str) -> bool: ...
    def list_xcoms(
        self, dag_id: str | None, run_id: str | None, task_id: str | None, key: str | None
    ) -> list[Row]: ...
    def get_xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int) -> Any: ...
    def add_operator(self, name: str, role: str, teams: Sequence[str]) -> Row: ...
    def list_operators(self) -> list[Row]: ...
    def revoke_operator(self, name: str) -> Row: ...
    def events(self, after: int | None, dag_id: str | None) -> list[Row]: ...
    def audit_reads(
        self, ti_id: str | None, dag_id: str | None, key: str | None, since: datetime | None
    ) -> list[Row]: ...
    def follow_events(
        self, after: int | None, dag_id: str | None, emit: Callable[[Row], None]
    ) -> None: ...


def backend() -> Backend:
    where = target()
    if where.server is None:
        from taskgate.cli.local import LocalBackend

        return LocalBackend()
    if not where.key:
        raise fail(f"calling {where.server} needs an operator key: --key or ${KEY_ENV}", 2)
    from taskgate.cli.remote import RemoteBackend

    return RemoteBackend(where.server, where.key)


def require_local(command: str) -> None:
    """End ``command`` when a server is named: it works on this machine's own database
    and keys, which are not the server's."""
    where = target()
    if where.server is not None:
        raise fail(
            f"`taskgate {command}` works on the server's own database and keys, on its "
            f"host; it cannot run against {where.server} (drop --server / unset ${SERVER_ENV})",
            2,
        )
