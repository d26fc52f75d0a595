"""The operator commands on the local database: the services, called with a session,
answering the views' dicts (the control API's answers, for the same calls by an admin
of every team).

Imported only in local mode: it loads the database layer and the services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from taskgate.cli.backend import Row
from taskgate.cli.common import with_runtime, with_session
from taskgate.services import (
    connections,
    control,
    declared_access,
    events,
    operators,
    read_audit,
    task_instances,
    variables,
    views,
    workloads,
    xcoms,
)


class LocalBackend:
    def add_dag(self, dag_id: str, team: str | None, token_binding: str | None) -> Row:
        return views.dag(with_session(lambda s, _rt: control.add_dag(
            s, dag_id, team=team, token_binding=token_binding)))

    def list_dags(self) -> list[Row]:
        return [views.dag(d) for d in with_session(lambda s, _rt: control.list_dags(s))]

    def audit_reads(
        self, ti_id: str | None, dag_id: str | None, key: str | None, since: datetime | None
    ) -> list[Row]:
        ident = uuid.UUID(ti_id) if ti_id is not None else None
        found = with_session(lambda s, _rt: read_audit.reads(
            s, ti_id=ident, dag_id=dag_id, key=key, since=since
        ))
        return [views.audit_read(row) for row in found]

    def dag_access(self, dag_id: str) -> Row:
        found = with_session(lambda s, _rt: declared_access.declaration(s, dag_id))
        return views.dag_access(dag_id, found)

    def declare_dag_access(
        self, dag_id: str, task_id: str | None, variables: Sequence[str],
        connections: Sequence[str], xcom_from: Sequence[str],
    ) -> Row:
        allowance = declared_access.Allowance.from_dict(
            {"variables": variables, "connections": connections, "xcom_from": xcom_from}
        )
        declared = with_session(
            lambda s, _rt: declared_access.declare(s, dag_id, allowance, task_id=task_id)
        )
        return views.dag_access(dag_id, declared)

    def clear_dag_access(self, dag_id: str) -> Row:
        with_session(lambda s, _rt: declared_access.undeclare(s, dag_id))
        return views.dag_access(dag_id, None)

    def create_run(
        self, dag_id: str, run_id: str, tasks: Sequence[str], max_tries: int,
        mapped: dict[str, int],
    ) -> Row:
        created = with_session(
            lambda s, _rt: control.create_run(
                s, dag_id, run_id, list(tasks), max_tries=max_tries, mapped=mapped
            )
        )
        return views.created_run(dag_id, run_id, created.task_instances)

    def list_task_instances(self, dag_id: str | None, state: str | None) -> list[Row]:
        tis = with_session(
            lambda s, _rt: control.list_task_instances(s, dag_id=dag_id, state=state)
        )
        return [views.task_instance(ti) for ti in tis]

    def show_task_instance(self, ti_id: str) -> Row:
        ident = uuid.UUID(ti_id)

        async def load(session, _rt):  # type: ignore[no-untyped-def]
            ti = await task_instances.get_task_instance(session, ident)
            return await control.describe_task_instance(session, ti)

        return with_session(load)

    def queue(self, ti_id: str, airflow: dict[str, Any] | None) -> Row:
        queued = with_runtime(lambda runtime: runtime.lifecycle.queue(uuid.UUID(ti_id)))
        if airflow is not None:
            return workloads.airflow_execute_task(queued.ti, queued.workload_token, **airflow)
        return views.queued(queued.workload_token, queued.ti)

    def revoke_tokens(self, ti_id: str) -> Row:
        ident = uuid.UUID(ti_id)
        mark = with_runtime(lambda runtime: runtime.lifecycle.revoke_tokens(ident))
        return {"ti_id": str(ident), "tokens_not_before": mark}

    def put_variable(
        self, key: str, value: str, description: str | None, team: str | None
    ) -> Row:
        async def put(session, rt):  # type: ignore[no-untyped-def]
            await variables.put(session, rt.secrets, key, value, description=description,
                                team=team)
            return views.variable(await variables.get(session, rt.secrets, key))

        return with_session(put)

    def get_variable(self, key: str) -> Row:
        return views.variable(with_session(lambda s, rt: variables.get(s, rt.secrets, key)))

    def list_variables(self) -> list[Row]:
        found = with_session(lambda s, rt: variables.list_all(s, rt.secrets))
        return [views.variable(v) for v in found]

    def delete_variable(self, key: str) -> bool:
        return with_session(lambda s, _rt: variables.delete_key(s, key))

    def put_connection(self, conn_id: str, uri: str, team: str | None) -> Row:
        async def put(session, rt):  # type: ignore[no-untyped-def]
            fields = connections.parse_uri(uri)
            return await connections.put(session, rt.secrets, conn_id, fields, team=team)

        return views.connection(with_session(put), reveal=True)

    def get_connection(self, conn_id: str, reveal: bool) -> Row:
        found = with_session(lambda s, rt: connections.get(s, rt.secrets, conn_id))
        return views.connection(found, reveal=reveal)

    def list_connections(self) -> list[Row]:
        found = with_session(lambda s, rt: connections.list_all(s, rt.secrets))
        return [views.connection(c) for c in found]

    def delete_connection(self, conn_id: str) -> bool:
        return with_session(lambda s, _rt: connections.delete_id(s, conn_id))

    def list_xcoms(
        self, dag_id: str | None, run_id: str | None, task_id: str | None, key: str | None
    ) -> list[Row]:
        found = with_session(
            lambda s, _rt: xcoms.list_stored(s, dag_id=dag_id, run_id=run_id, task_id=task_id,
                                             key=key)
        )
        return [asdict(x) for x in found]

    def get_xcom(self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int) -> Any:
        ref = xcoms.XComRef(dag_id, run_id, task_id, key)
        return with_session(lambda s, _rt: xcoms.get_stored(s, ref, map_index=map_index))

    def add_operator(self, name: str, role: str, teams: Sequence[str]) -> Row:
        made = with_session(
            lambda s, _rt: operators.add_operator(s, name, operators.Role(role), list(teams))
        )
        return views.new_operator(made)

    def list_operators(self) -> list[Row]:
        return [views.operator(o) for o in with_session(lambda s, _rt: operators.list_operators(s))]

    def revoke_operator(self, name: str) -> Row:
        return views.operator(with_session(lambda s, _rt: operators.revoke_operator(s, name)))

    def events(self, after: int | None, dag_id: str | None) -> list[Row]:
        found = with_session(
            lambda s, _rt: events.read(s, after=after, dag_id=dag_id, settle=events.SETTLE)
        )
        return [views.event(record) for record in found]

    def follow_events(
        self, after: int | None, dag_id: str | None, emit: Callable[[Row], None]
    ) -> None:
        async def follow(runtime):  # type: ignore[no-untyped-def]
            async for record in events.follow(runtime.sessionmaker, after=after, dag_id=dag_id):
                emit(views.event(record))

        with_runtime(follow)
