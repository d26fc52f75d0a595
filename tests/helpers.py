"""Request bodies, headers and process helpers the tests share."""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import jwt

RUN_BODY = {
    "state": "running",
    "hostname": "worker-1",
    "unixname": "tester",
    "pid": 4242,
    "start_date": "2026-01-01T00:00:00Z",
}
BEAT_BODY = {"hostname": "worker-1", "pid": 4242}
SUCCESS_BODY = {"state": "success", "end_date": "2026-01-01T00:05:00Z"}


def signed(runtime, payload: dict, **headers: object) -> str:
    """``payload`` as a JWT signed with the runtime's signing key (any claims, for tests
    of what the validator and the security layers make of them)."""
    key = runtime.keys.signing
    return jwt.encode(payload, key.key, algorithm=key.algorithm, headers={"kid": key.kid, **headers})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def gauge(metrics: str, name: str) -> float:
    """One unlabelled sample of the Prometheus text that ``/metrics`` answered."""
    match = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


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


async def fresh_ti(runtime: object, ti_id: object) -> object:
    """The TI as the database has it now (its own session: nothing cached)."""
    from taskgate.services.task_instances import get_task_instance

    async with runtime.sessionmaker() as session:  # type: ignore[attr-defined]
        return await get_task_instance(session, ti_id)


def serve_env(settings: object) -> dict[str, str]:
    """The environment of a `taskgate serve` (or CLI) process on a test's ``Settings``:
    its data directory and, unless it is the embedded SQLite, its database URL."""
    env = {**os.environ, "TASKGATE_DATA_DIR": str(settings.data_dir)}  # type: ignore[attr-defined]
    if settings.database_url:  # type: ignore[attr-defined]
        env["TASKGATE_DATABASE_URL"] = settings.database_url  # type: ignore[attr-defined]
    return env


def start_serve(
    env: dict[str, str], port: int, *extra: str, log_path: Path | None = None
) -> subprocess.Popen:
    """`taskgate serve` on 127.0.0.1:port, returned once /execution/health answers.

    Its output goes to a file (``log_path``, else a temporary one; ``server_output`` reads
    it), never to a pipe: a pipe nobody drains fills after some hundred access-log lines,
    and the server then blocks in write(2) with its event loop, answering nothing."""
    log = open(log_path, "w+") if log_path else tempfile.TemporaryFile("w+")  # noqa: SIM115
    proc = subprocess.Popen(
        [*TASKGATE, "serve", "--port", str(port), *extra],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    proc.log = log  # type: ignore[attr-defined]
    wait_until_healthy(f"http://127.0.0.1:{port}", proc, lambda: server_output(proc))
    return proc


def server_output(proc: subprocess.Popen) -> str:
    """What a server started by ``start_serve`` printed so far."""
    log = proc.log  # type: ignore[attr-defined]
    log.flush()
    log.seek(0)
    return log.read()
