"""The CLI and ``taskgate serve`` as a user runs them: separate processes."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

from taskgate.settings import Settings

TASKGATE = [sys.executable, "-m", "taskgate"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*TASKGATE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def wait_until_healthy(
    url: str, process: subprocess.Popen[str], output: Callable[[], str], timeout: float = 30,
    verify: ssl.SSLContext | bool = True,
) -> None:
    """Return once ``url`` answers ``/execution/health`` (an https one checked with
    ``verify``); if the process exits or the time runs out, kill it and raise with what it
    printed."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/execution/health", timeout=1, verify=verify).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(timeout=10)
            raise RuntimeError(f"taskgate serve did not start:\n{output()}")
        time.sleep(0.1)


def serve_env(settings: Settings) -> dict[str, str]:
    """The environment of a `taskgate serve` (or CLI) process on a test's ``Settings``:
    its data directory and, unless it is the embedded SQLite, its database URL."""
    env = {**os.environ, "TASKGATE_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["TASKGATE_DATABASE_URL"] = settings.database_url
    else:
        env.pop("TASKGATE_DATABASE_URL", None)  # one the test run itself was given
    return env


class ServeProcess(subprocess.Popen[str]):
    """A `taskgate serve` process and the file its output goes to."""

    log: IO[str]


def start_serve(
    env: dict[str, str], port: int, *extra: str, log_path: Path | None = None,
    ca_bundle: Path | None = None,
) -> ServeProcess:
    """`taskgate serve` on 127.0.0.1:port, returned once /execution/health answers: over
    https, trusting the CA certificates in ``ca_bundle``, when it is given (a server
    started with --tls-cert/--tls-key).

    Its output goes to a file (``log_path``, else a temporary one; ``server_output`` reads
    it), never to a pipe: a pipe nobody drains fills after some hundred access-log lines,
    and the server then blocks in write(2) with its event loop, answering nothing."""
    log = open(log_path, "w+") if log_path else tempfile.TemporaryFile("w+")  # noqa: SIM115
    proc = ServeProcess(
        [*TASKGATE, "serve", "--port", str(port), *extra],
        env=env, stdout=log, stderr=subprocess.STDOUT, text=True,
    )
    proc.log = log
    if ca_bundle is None:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, lambda: server_output(proc))
    else:
        wait_until_healthy(f"https://127.0.0.1:{port}", proc, lambda: server_output(proc),
                           verify=ssl.create_default_context(cafile=ca_bundle))
    return proc


def server_output(proc: ServeProcess) -> str:
    """What a server started by ``start_serve`` printed so far."""
    proc.log.flush()
    proc.log.seek(0)
    return proc.log.read()
