"""The operator commands through a server's control API (``taskgate.control``), answering
the same dicts as ``LocalBackend``: the API's JSON, passed on as it came.

Needs httpx only: no database, no keys, no server code on this machine.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from taskgate.cli.backend import Row
from taskgate.cli.common import fail
from taskgate.client.errors import ApiError, NotFound
from taskgate.client.options import CaBundleError
from taskgate.client.retry import RetryPolicy
from taskgate.control import ControlClient

# A command fails within seconds when the server is away, rather than waiting out the
# client's default minute of retries.
CLI_RETRY = RetryPolicy(attempts=3, first_delay=0.2, max_delay=1.0, deadline=5.0)
PAGE = 1000  # the control API's largest page of task instances

# The client logs each retry as a warning; a command says what failed once, on stderr,
# as the local mode does.
logging.getLogger("taskgate.client").addHandler(logging.NullHandler())


@contextmanager
def _answered() -> Iterator[None]:
    """The API's refusals as the local mode's: its message, exit 2 for bad input (422),
    else 1."""
    try:
        yield
    except ApiError as exc:
        raise fail(exc.message, 2 if exc.status == 422 else 1) from None


def _deleted(delete: Callable[[], object]) -> bool:
    """Whether there was something to delete (the local mode's answer)."""
    with _answered():
        try:
            delete()
        except NotFound:
            return False
        return True


def _masked(row: Row) -> Row:
    # What the local mode prints unless asked to reveal: admins get the password from the
    # API, the CLI shows that one is set.
    if row.get("password") is not None:
        return {**row, "password": "***"}
    return row


class RemoteBackend:
    def __init__(self, server: str, key: str) -> None:
        try:
            self.api = ControlClient(server, key, retry=CLI_RETRY)
        except CaBundleError as exc:
            raise fail(str(exc)) from None
        except ValueError as exc:
            raise fail(f"--server / $TASKGATE_SERVER: {exc}", 2) from None

    def add_dag(self, dag_id: str, team: str | None, token_binding: str | None) -> Row:
        with _answered():
            return self.api.add_dag(dag_id, team, token_binding).raw

    def list_dags(self) -> list[Row]:
        with _answered():
            return [d.raw for d in self.api.list_dags()]

    def audit_reads(
        self, ti_id: str | None, dag_id: str | None, key: str | None, since: datetime | None
    ) -> list[Row]:
        with _answered():
            return self.api.list_audit_reads(
                ti_id=ti_id, dag_id=dag_id, key=key,
                since=since.isoformat() if since is not None else None,
            )

    def dag_access(self, dag_id: str) -> Row:
        with _answered():
            return self.api.get_dag_access(dag_id)

    def declare_dag_access(
        self, dag_id: str, task_id: str | None, variables: Sequence[str],
        connections: Sequence[str], xcom_from: Sequence[str],
    ) -> Row:
        with _answered():
            return self.api.declare_dag_access(
                dag_id, task_id=task_id, variables=variables, connections=connections,
                xcom_from=xcom_from,
            )

    def clear_dag_access(self, dag_id: str) -> Row:
        with _answered():
            return self.api.clear_dag_access(dag_id)

    def create_run(
        self, dag_id: str, run_id: str, tasks: Sequence[str], max_tries: int,
        mapped: dict[str, int],
    ) -> Row:
        with _answered():
            return self.api.create_run(dag_id, run_id, tasks, max_tries, mapped).raw

    def list_task_instances(self, dag_id: str | None, state: str | None) -> list[Row]:
        rows: list[Row] = []
        with _answered():
            while True:  # every page, as the local mode lists them all
                page = self.api.list_task_instances(dag_id=dag_id, state=state, limit=PAGE,
                                                    offset=len(rows))
                rows += [ti.raw for ti in page]
                if len(page) < PAGE:
                    return rows

    def show_task_instance(self, ti_id: str) -> Row:
        with _answered():
            return self.api.get_task_instance(ti_id).raw

    def queue(self, ti_id: str, airflow: dict[str, Any] | None) -> Row:
        with _answered():
            if airflow is None:
                return self.api.queue(ti_id).raw
            return self.api.queue(ti_id, "airflow", **airflow).raw

    def revoke_tokens(self, ti_id: str) -> Row:
        with _answered():
            return self.api.revoke_tokens(ti_id).raw

    def put_variable(
        self, key: str, value: str, description: str | None, team: str | None
    ) -> Row:
        with _answered():
            return self.api.put_variable(key, value, description=description, team=team).raw

    def get_variable(self, key: str) -> Row:
        with _answered():
            return self.api.get_variable(key).raw

    def list_variables(self) -> list[Row]:
        with _answered():
            return [v.raw for v in self.api.list_variables()]

    def delete_variable(self, key: str) -> bool:
        return _deleted(lambda: self.api.delete_variable(key))

    def put_connection(self, conn_id: str, uri: str, team: str | None) -> Row:
        with _answered():
            return self.api.put_connection(conn_id, uri, team=team).raw

    def get_connection(self, conn_id: str, reveal: bool) -> Row:
        with _answered():
            row = self.api.get_connection(conn_id).raw
        return row if reveal else _masked(row)

    def list_connections(self) -> list[Row]:
        with _answered():
            return [_masked(c.raw) for c in self.api.list_connections()]

    def delete_connection(self, conn_id: str) -> bool:
        return _deleted(lambda: self.api.delete_connection(conn_id))

    def list_xcoms(
        self, dag_id: str | None, run_id: str | None, task_id: str | None, key: str | None
    ) -> list[Row]:
        with _answered():
            found = self.api.list_xcoms(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)
            return [x.raw for x in found]

    def get_xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int) -> Any:
        with _answered():
            return self.api.get_xcom(dag_id, run_id, task_id, key, map_index=map_index)

    def add_operator(self, name: str, role: str, teams: Sequence[str]) -> Row:
        with _answered():
            return self.api.add_operator(name, role, teams).raw  # type: ignore[arg-type]

    def list_operators(self) -> list[Row]:
        with _answered():
            return [o.raw for o in self.api.list_operators()]

    def revoke_operator(self, name: str) -> Row:
        with _answered():
            return self.api.revoke_operator(name).raw

    def events(self, after: int | None, dag_id: str | None) -> list[Row]:
        with _answered():
            return [e.raw for e in self.api.list_events(after, dag_id)]

    def follow_events(
        self, after: int | None, dag_id: str | None, emit: Callable[[Row], None]
    ) -> None:
        with _answered():
            for event in self.api.events(after, dag_id):
                emit(event.raw)
