"""Plain-dict views of stored rows for ``--json`` output (one shape per kind of row)."""

from __future__ import annotations

from typing import Any

from taskgate.db.models import Connection, TaskInstance, Variable


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


def variable(var: Variable) -> dict[str, Any]:
    return {"key": var.key, "value": var.value, "description": var.description, "team": var.team}


def connection(conn: Connection, *, reveal: bool = False) -> dict[str, Any]:
    return {
        "conn_id": conn.conn_id,
        "conn_type": conn.conn_type,
        "host": conn.host,
        "schema": conn.schema,
        "login": conn.login,
        "password": conn.password if reveal else ("***" if conn.password else None),
        "port": conn.port,
        "extra": conn.extra,
        "team": conn.team,
    }
