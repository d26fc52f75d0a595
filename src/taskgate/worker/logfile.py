"""Where a task's log goes by default: one file per try, in Airflow's layout."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from taskgate.worker.workload import WorkloadTI


def default_log_file(data_dir: Path, ti: WorkloadTI) -> Path:
    """``<data_dir>/logs/dag_id=D/run_id=R/task_id=T[/map_index=N]/attempt=K.log``."""

    def part(name: str, value: object) -> str:
        return f"{name}={quote(str(value), safe='')}"  # ids may hold "/": one level each

    path = data_dir / "logs" / part("dag_id", ti.dag_id) / part("run_id", ti.run_id)
    path /= part("task_id", ti.task_id)
    if ti.map_index >= 0:
        path /= part("map_index", ti.map_index)
    return path / f"attempt={ti.try_number}.log"
