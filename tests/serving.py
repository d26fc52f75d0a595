"""Starting ``taskgate serve`` as a process in tests: a free port, and waiting until the
server answers its health check."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(
    url: str, process: subprocess.Popen, output: Callable[[], str], timeout: float = 30
) -> None:
    """Return once ``url`` answers ``/execution/health``; if the process exits or the time
    runs out, kill it and raise with what it printed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/execution/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"taskgate serve did not start:\n{output()}")
        time.sleep(0.1)
