"""The client and the wire models stand apart from the server: importing them loads
neither FastAPI nor ``taskgate.api`` (a worker image needs neither)."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["taskgate.client", "taskgate.wire.task_instances", "taskgate.wire.http"])
def test_importing_loads_no_server_code(module: str) -> None:
    probe = (
        f"import sys, {module}\n"
        "server = sorted(m for m in sys.modules if m.split('.')[0] == 'fastapi'"
        " or m.startswith('taskgate.api') or m.startswith('taskgate.services'))\n"
        "print(','.join(server))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "", f"{module} imports {result.stdout.strip()}"
