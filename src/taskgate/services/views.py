"""Plain-dict views of stored rows, one shape per kind: the CLI's ``--json`` output and
the control API's answers, so that both read the same."""

from __future__ import annotations

from typing import Any

from taskgate.db.models import Dag, Operator, ReadAudit, TaskInstance
from taskgate.services.connections import ConnectionValue
from taskgate.services.declared_access import NO_DECLARATION, Declaration
from taskgate.services.events import EventRecord
from taskgate.services.operators import NewOperator
from taskgate.services.variables import VariableValue


def _iso(value: Any) -> Any:
    return value.isoformat() if value is not None else None


def task_instance(ti: TaskInstance) -> dict[str, Any]:
    return {
        "id": str(ti.id),
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": ti.task_id,
        "map_index": ti.map_index,
        "state": ti.state,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "hostname": ti.hostname,
        "unixname": ti.unixname,
        "pid": ti.pid,
        "queued_at": _iso(ti.queued_at),
        "start_date": _iso(ti.start_date),
        "end_date": _iso(ti.end_date),
        "last_heartbeat_at": _iso(ti.last_heartbeat_at),
        "rendered_map_index": ti.rendered_map_index,
    }


def event(record: EventRecord) -> dict[str, Any]:
    return {"id": record.id, "event": record.kind, "data": record.data}


def audit_read(row: ReadAudit) -> dict[str, Any]:
    return {
        "id": row.id,
        "at": row.at.isoformat(),
        "ti_id": str(row.ti_id),
        "dag_id": row.dag_id,
        "task_id": row.task_id,
        "map_index": row.map_index,
        "try_number": row.try_number,
        "kind": row.kind,
        "key": row.key,
        "outcome": row.outcome,
        "reason": row.reason,
        "hostname": row.hostname,
    }


def dag(row: Dag) -> dict[str, Any]:
    return {"dag_id": row.dag_id, "team": row.team, "token_binding": row.token_binding}


def dag_access(dag_id: str, declaration: Declaration | None) -> dict[str, Any]:
    """A DAG's declared access; ``declared`` false: the team rule alone applies."""
    shown = declaration if declaration is not None else NO_DECLARATION
    return {"dag_id": dag_id, "declared": declaration is not None, **shown.as_dict()}


def created_run(dag_id: str, run_id: str, tis: list[TaskInstance]) -> dict[str, Any]:
    return {
        "dag_id": dag_id,
        "run_id": run_id,
        "task_instances": [
            {"id": str(ti.id), "task_id": ti.task_id, "map_index": ti.map_index, "state": ti.state}
            for ti in tis
        ],
    }


def queued(workload_token: str, ti: TaskInstance) -> dict[str, Any]:
    return {"token": workload_token, "ti": task_instance(ti)}


def operator(row: Operator) -> dict[str, Any]:
    return {
        "name": row.name,
        "role": row.role,
        "teams": row.teams,
        "created_at": _iso(row.created_at),
        "revoked_at": _iso(row.revoked_at),
    }


def new_operator(made: NewOperator) -> dict[str, Any]:
    """A new operator with its key: the one answer that ever shows the key."""
    return {**operator(made.operator), "key": made.key}


def variable(var: VariableValue) -> dict[str, Any]:
    return {"key": var.key, "value": var.value, "description": var.description, "team": var.team}


def connection(conn: ConnectionValue, *, reveal: bool = False) -> dict[str, Any]:
    fields = conn.fields
    return {
        "conn_id": conn.conn_id,
        "conn_type": fields.conn_type,
        "host": fields.host,
        "schema": fields.schema,
        "login": fields.login,
        "password": fields.password if reveal else ("***" if fields.password else None),
        "port": fields.port,
        "extra": fields.extra,
        "team": conn.team,
    }
