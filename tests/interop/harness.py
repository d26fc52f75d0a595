"""The interop harness: a cached virtualenv with the real Airflow Task SDK, a taskgate
server process on 127.0.0.1, the taskgate CLI, and the SDK's own worker entry point."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.processes import free_port, wait_until_healthy

REPO = Path(__file__).resolve().parents[2]
SDK_REQUIREMENT = "apache-airflow-task-sdk==1.3.*"
SDK_VENV = REPO / ".cache" / "airflow-sdk-venv"
DAGS_FOLDER = Path(__file__).parent / "dags"
DAG_FILE = "interop.py"
BUNDLE = "dags-folder"  # the DAG bundle every Airflow worker has: its [core] dags_folder


def sdk_python() -> Path:
    """The Python of a virtualenv with the Task SDK, built on first use and cached in
    ``.cache/`` (git-ignored). A lock keeps parallel runs from building it twice."""
    python = SDK_VENV / "bin" / "python"
    ready = SDK_VENV / ".taskgate-ready"
    SDK_VENV.parent.mkdir(exist_ok=True)
    with open(SDK_VENV.parent / "airflow-sdk-venv.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists() and ready.read_text() == SDK_REQUIREMENT and python.exists():
            return python
        shutil.rmtree(SDK_VENV, ignore_errors=True)
        steps = [
            [sys.executable, "-m", "venv", str(SDK_VENV)],
            [str(python), "-m", "pip", "install", "-q", "--timeout", "30", SDK_REQUIREMENT],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, timeout=900)
            if result.returncode != 0:
                shutil.rmtree(SDK_VENV, ignore_errors=True)
                errors = [line for line in result.stderr.splitlines() if "WARNING" not in line]
                pytest.fail(
                    f"could not install {SDK_REQUIREMENT} into {SDK_VENV} (is the package index "
                    f"reachable?); the interop tests need it.\n" + "\n".join(errors[-15:]),
                    pytrace=False,
                )
        ready.write_text(SDK_REQUIREMENT)
    return python


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "TASKGATE_"))}


@dataclass
class Request:
    method: str
    path: str
    status: int


@dataclass
class TaskgateServer:
    """``taskgate serve`` as a process, and the CLI on the same settings."""

    env: dict[str, str]
    url: str
    log: Path
    process: subprocess.Popen | None = field(default=None, repr=False)

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "taskgate", *args],
            env=self.env, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, f"taskgate {' '.join(args)}: {result.stderr}"
        return result.stdout

    def cli_json(self, *args: str) -> object:
        return json.loads(self.cli(*args))

    def requests(self) -> list[Request]:
        """Every request the server answered so far, from its access log (JSON lines:
        the ``http.request`` events)."""
        lines = self.log.read_text().splitlines()
        events = (json.loads(line) for line in lines if line.startswith("{"))
        return [Request(e["method"], e["path"], e["status"])
                for e in events if e.get("event") == "http.request"]

    def ti(self, ti_id: str) -> dict:
        return self.cli_json("ti", "show", ti_id, "--json")  # type: ignore[return-value]


@contextlib.contextmanager
def serve(data_dir: Path, **settings: str) -> Iterator[TaskgateServer]:
    env = {**_clean_environ(), "TASKGATE_DATA_DIR": str(data_dir)}
    env.update({f"TASKGATE_{k.upper()}": v for k, v in settings.items()})
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = data_dir / "server.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "taskgate", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    server = TaskgateServer(env, f"http://127.0.0.1:{port}", log, process)
    try:
        wait_until_healthy(server.url, process, log.read_text)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class Worker:
    """Runs workloads with the Task SDK's own entry point, configured as an Airflow worker
    is: the Execution API URL and a DAGs folder (the ``dags-folder`` bundle). No database."""

    python: Path
    home: Path

    def env(self, server: TaskgateServer) -> dict[str, str]:
        return {
            **_clean_environ(),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{server.url}/execution/",
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            # Short waits so each task takes seconds: the supervisor polls (and heartbeats)
            # every second, and a failing call is retried quickly.
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRIES": "3",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MIN": "0.2",
            "AIRFLOW__WORKERS__EXECUTION_API_RETRY_WAIT_MAX": "1",
        }

    def run(self, server: TaskgateServer, workload: dict) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.python), "-m", "airflow.sdk.execution_time.execute_workload",
             "--json-string", json.dumps(workload)],
            env=self.env(server), capture_output=True, text=True, timeout=180,
        )


def queue_airflow(server: TaskgateServer, ti_id: str) -> dict:
    return server.cli_json(  # type: ignore[return-value]
        "ti", "queue", ti_id, "--format", "airflow",
        "--dag-rel-path", DAG_FILE, "--bundle-name", BUNDLE,
    )
