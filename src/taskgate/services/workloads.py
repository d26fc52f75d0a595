"""The Airflow ``ExecuteTask`` workload: what an Airflow executor hands a worker, and what
``python -m airflow.sdk.execution_time.execute_workload`` (Task SDK 1.3) runs.

taskgate keeps no DAG versions, so ``dag_version_id`` is derived from the DAG id (a
UUID5 in ``DAG_VERSION_NAMESPACE``): the same for every run of a DAG, and the worker only
carries it along. ``log_path`` follows Airflow's default log file template, relative to
the worker's ``[logging] base_log_folder``.
"""

from __future__ import annotations

import uuid
from typing import Any

from taskgate.db.models import TaskInstance

DAG_VERSION_NAMESPACE = uuid.UUID("5c1f4c8e-7a53-4a8e-9d0c-2f6b0d7c9e11")
DEFAULT_QUEUE = "default"


def dag_version_id(dag_id: str) -> uuid.UUID:
    return uuid.uuid5(DAG_VERSION_NAMESPACE, dag_id)


def log_path(ti: TaskInstance) -> str:
    mapped = f"map_index={ti.map_index}/" if ti.map_index >= 0 else ""
    return (
        f"dag_id={ti.dag_id}/run_id={ti.run_id}/task_id={ti.task_id}/"
        f"{mapped}attempt={ti.try_number}.log"
    )


def airflow_execute_task(
    ti: TaskInstance,
    workload_token: str,
    *,
    dag_rel_path: str,
    bundle_name: str,
    bundle_version: str | None = None,
) -> dict[str, Any]:
    """The workload of a queued TI; ``dag_rel_path`` is the DAG file's path inside the
    bundle the worker knows as ``bundle_name``."""
    return {
        "type": "ExecuteTask",
        "token": workload_token,
        "dag_rel_path": dag_rel_path,
        "bundle_info": {"name": bundle_name, "version": bundle_version},
        "log_path": log_path(ti),
        "ti": {
            "id": str(ti.id),
            "task_id": ti.task_id,
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "try_number": ti.try_number,
            "dag_version_id": str(dag_version_id(ti.dag_id)),
            "map_index": ti.map_index,
            "hostname": None,
            "context_carrier": {},
            "queue": DEFAULT_QUEUE,
            "pool_slots": 1,
            "priority_weight": 1,
        },
        "sentry_integration": "",
    }
