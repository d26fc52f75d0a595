"""The worker's default log file follows Airflow's log layout (``taskgate.worker.logfile``)."""

import uuid
from pathlib import Path

from taskgate.worker.logfile import default_log_file
from taskgate.worker.workload import WorkloadTI


def ti(**fields: object) -> WorkloadTI:
    values = {"id": uuid.uuid4(), "dag_id": "etl", "run_id": "r1", "task_id": "t",
              "try_number": 1, **fields}
    return WorkloadTI.model_validate(values)


def test_airflow_run_ids_keep_the_layout_airflow_writes():
    run_id = "manual__2026-01-01T00:00:00+00:00"
    path = default_log_file(Path("/data"), ti(run_id=run_id, try_number=2))
    assert path == Path(f"/data/logs/dag_id=etl/run_id={run_id}/task_id=t/attempt=2.log")


def test_mapped_tis_get_their_map_index_level():
    path = default_log_file(Path("/d"), ti(map_index=3))
    assert path == Path("/d/logs/dag_id=etl/run_id=r1/task_id=t/map_index=3/attempt=1.log")


def test_a_slash_in_an_id_stays_inside_its_level_and_reads_back():
    path = default_log_file(Path("/d"), ti(run_id="a/../b%2F", task_id="x/y"))
    assert path.parent.parent.name == "run_id=a%2F..%2Fb%252F"
    assert path.parent.name == "task_id=x%2Fy"
    assert path.relative_to("/d/logs").parts[:3] == (
        "dag_id=etl", "run_id=a%2F..%2Fb%252F", "task_id=x%2Fy")
