"""Request bodies, headers and process helpers the tests share."""

import socket
import subprocess
import sys
import time

import httpx

RUN_BODY = {
    "state": "running",
    "hostname": "worker-1",
    "unixname": "tester",
    "pid": 4242,
    "start_date": "2026-01-01T00:00:00Z",
}
BEAT_BODY = {"hostname": "worker-1", "pid": 4242}
SUCCESS_BODY = {"state": "success", "end_date": "2026-01-01T00:05:00Z"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Processes: the CLI and `taskgate serve`, as a user runs them ------------------------------

TASKGATE = [sys.executable, "-m", "taskgate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*TASKGATE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def start_serve(env: dict[str, str], port: int, *extra: str) -> subprocess.Popen:
    """`taskgate serve` on 127.0.0.1:port, returned once /execution/health answers."""
    proc = subprocess.Popen(
        [*TASKGATE, "serve", "--port", str(port), *extra],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/execution/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"taskgate serve did not start:\n{proc.stdout.read()}")
