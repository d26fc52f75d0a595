"""Fixtures of the interop suite: the Task SDK virtualenv (built once, cached), a taskgate
server process and an Airflow worker home."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.harness import TaskgateServer, Worker, sdk_python, serve

# Distinctive, so that finding it (or not) in the database file and the logs means
# something.
WAREHOUSE_PASSWORD = "pw-interop-5d1f7c"


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    return sdk_python()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TaskgateServer]:
    with serve(tmp_path_factory.mktemp("taskgate")) as running:
        running.cli("variables", "set", "greeting", "hello")
        running.cli("connections", "add", "warehouse", "--uri",
                    f"postgres://etl:{WAREHOUSE_PASSWORD}@db.internal:5432/dw")
        yield running


@pytest.fixture(scope="module")
def worker(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Worker:
    return Worker(airflow_python, tmp_path_factory.mktemp("airflow-home"))
