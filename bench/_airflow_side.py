"""Prepare Apache Airflow's own database and tokens for the reference benchmark.

Runs with the Python of the cached Airflow venv (see bench/airflow_reference.py), never with
taskgate's: it imports only Airflow. The caller sets AIRFLOW_HOME and the [database] /
[api_auth] settings through AIRFLOW__* environment variables, which the API server started
afterwards shares, so both sign and check tokens with the same secret.

    python _airflow_side.py --running 64 --queued 8

Steps: migrate the SQLite database (`airflow db migrate`), write a
DAG file with one task per TI wanted, parse and store it the way the DAG processor does
(bundle, serialized DAG, dag version), create one manual DAG run (which creates its TIs),
queue the TIs, set one variable, and mint tokens with Airflow's JWTGenerator. Prints JSON.

The "running" TIs are left queued with an execution token; the harness moves them to
running with a real `PATCH .../run` once the server is up. The "queued" TIs get a workload
token, as the scheduler would hand to an executor.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

DAG_ID = "taskgate_bench"
RUN_ID = "manual__bench"
VARIABLE_KEY = "bench_variable"
BUNDLE = "dags-folder"

DAG_FILE = """\
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG({dag_id!r}, schedule=None, catchup=False):
    for i in range({n}):
        EmptyOperator(task_id=f"t{{i:05d}}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--running", type=int, default=64)
    parser.add_argument("--queued", type=int, default=0)
    args = parser.parse_args()
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # Airflow's logging must not mix into the JSON on stdout

    dags = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
    dags.mkdir(parents=True, exist_ok=True)
    n = args.running + args.queued
    (dags / "bench_dag.py").write_text(DAG_FILE.format(dag_id=DAG_ID, n=n))

    from airflow.utils import db

    db.upgradedb()  # what `airflow db migrate` runs; on a new database it creates the schema

    from airflow.api_fastapi.execution_api.app import _jwt_generator
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.executors.workloads.base import BaseWorkloadSchema
    from airflow.models.dagbag import DBDagBag
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.variable import Variable
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select, update

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=dags, bundle_path=dags, bundle_name=BUNDLE)
    if bag.import_errors:
        sys.exit(f"DAG import errors: {bag.import_errors}")
    sync_bag_to_db(bag, BUNDLE, None)

    with create_session() as session:
        dag = DBDagBag().get_latest_version_of_dag(DAG_ID, session=session)
        now = datetime.now(timezone.utc)
        dag.create_dagrun(run_id=RUN_ID, run_after=now, start_date=now, run_type=DagRunType.MANUAL,
                          triggered_by=DagRunTriggeredByType.CLI, state=DagRunState.RUNNING,
                          session=session)
        session.execute(update(TaskInstance).where(TaskInstance.dag_id == DAG_ID)
                        .values(state=TaskInstanceState.QUEUED, queued_dttm=now, try_number=1))
        rows = session.execute(select(TaskInstance.id, TaskInstance.task_id, TaskInstance.map_index)
                               .where(TaskInstance.dag_id == DAG_ID)
                               .order_by(TaskInstance.task_id)).all()
    Variable.set(VARIABLE_KEY, "bench-value")

    # The same generator (config, key, lifetime) the execution API re-issues tokens with.
    generator = _jwt_generator()

    def ti(row, token: str) -> dict:
        return {"id": str(row.id), "dag_id": DAG_ID, "run_id": RUN_ID, "task_id": row.task_id,
                "map_index": row.map_index, "token": token}

    running = [ti(r, generator.generate(extras={"sub": str(r.id), "scope": "execution"}))
               for r in rows[: args.running]]
    # What the scheduler puts in an ExecuteTask workload (scope "workload", queue-timeout life).
    queued = [ti(r, BaseWorkloadSchema.generate_token(str(r.id), generator))
              for r in rows[args.running:]]
    json.dump({"running": running, "queued": queued,
               "variable_key": VARIABLE_KEY, "algorithm": generator.algorithm}, out)
    out.close()


if __name__ == "__main__":
    main()
