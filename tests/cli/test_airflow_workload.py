"""``ti queue --format airflow`` and ``xcoms``: the CLI side of running Airflow tasks."""

import json
import uuid

import pytest
from typer.testing import CliRunner

from taskgate.cli.main import app
from taskgate.services import workloads

runner = CliRunner()


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TASKGATE_DATA_DIR", str(tmp_path / "data"))


def invoke(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.stdout


def test_airflow_workload_of_a_mapped_ti():
    invoke("dags", "add", "etl")
    created = json.loads(invoke("runs", "create", "etl", "r1", "--task", "t", "--mapped", "t=2", "--json"))
    ti_id = created["task_instances"][1]["id"]
    invoke("ti", "queue", ti_id, "--format", "airflow", code=2)  # bundle facts are required
    assert json.loads(invoke("ti", "show", ti_id, "--json"))["state"] == "scheduled"

    workload = json.loads(
        invoke("ti", "queue", ti_id, "--format", "airflow", "--dag-rel-path", "etl.py",
               "--bundle-name", "dags-folder", "--bundle-version", "v1")
    )
    assert workload["type"] == "ExecuteTask" and workload["dag_rel_path"] == "etl.py"
    assert workload["bundle_info"] == {"name": "dags-folder", "version": "v1"}
    assert workload["log_path"] == "dag_id=etl/run_id=r1/task_id=t/map_index=1/attempt=1.log"
    ti = workload["ti"]
    assert (ti["id"], ti["map_index"], ti["try_number"]) == (ti_id, 1, 1)
    assert uuid.UUID(ti["dag_version_id"]) == workloads.dag_version_id("etl")
    claims = json.loads(invoke("tokens", "inspect", workload["token"]))
    assert claims["type"] == "workload" and claims["claims"]["sub"] == ti_id


def test_bad_mapped_option_and_missing_xcom():
    invoke("dags", "add", "etl")
    invoke("runs", "create", "etl", "r1", "--task", "t", "--mapped", "t", code=2)
    invoke("runs", "create", "etl", "r1", "--task", "t", "--mapped", "u=2", code=2)
    assert json.loads(invoke("xcoms", "list", "--json")) == []
    invoke("xcoms", "get", "etl", "r1", "t", code=1)
