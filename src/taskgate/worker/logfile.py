"""Where a task's log goes by default: one file per try, in Airflow's layout."""

from __future__ import annotations

from pathlib import Path

from taskgate.worker.workload import WorkloadTI


def _component(name: str, value: object) -> str:
    # Each id is one directory level, as in Airflow's log template, which does not encode.
    # Only what would change the level ("/") is escaped, and "%" so the escape reads back:
    # ordinary ids, Airflow's run ids with ":" and "+" included, stay as Airflow writes them.
    return f"{name}={str(value).replace('%', '%25').replace('/', '%2F')}"


def default_log_file(data_dir: Path, ti: WorkloadTI) -> Path:
    """``<data_dir>/logs/dag_id=D/run_id=R/task_id=T[/map_index=N]/attempt=K.log``."""
    path = data_dir / "logs" / _component("dag_id", ti.dag_id)
    path /= _component("run_id", ti.run_id)
    path /= _component("task_id", ti.task_id)
    if ti.map_index >= 0:
        path /= _component("map_index", ti.map_index)
    return path / f"attempt={ti.try_number}.log"
