"""Plain-dict views of stored rows for ``--json`` output (one shape per kind of row)."""

from __future__ import annotations

from typing import Any

from taskgate.db.models import TaskInstance
from taskgate.services.connections import ConnectionValue
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
