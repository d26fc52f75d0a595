"""Worker tests: workloads as `taskgate ti queue --json` prints them, and `taskgate worker
run` as a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from taskgate.runtime import Runtime
from tests.support.workloads import Workloads


@pytest.fixture
def workloads(runtime: Runtime, tmp_path: Path) -> Workloads:
    return Workloads(runtime, tmp_path)
