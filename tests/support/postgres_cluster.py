"""A throwaway PostgreSQL cluster (own data directory and port) that a test may stop,
restart and reconfigure without touching the machine's server."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from tests.support.processes import free_port

PG_BIN = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


class Cluster:
    def __init__(self, root: str, port: int) -> None:
        self.bin = PG_BIN[-1]
        self.data = os.path.join(root, "data")
        self.port = port

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/template1"

    def url(self, user: str = "postgres", database: str = "postgres", port: int | None = None) -> str:
        return f"postgresql+asyncpg://{user}@127.0.0.1:{port or self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [os.path.join(self.bin, args[0]), *args[1:]]
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=60)

    def _options(self) -> list[str]:
        # -l: the server's output goes to a file; on our pipe it would keep it open, and
        # waiting for pg_ctl's output would wait for the server to end.
        return ["-l", os.path.join(self.data, "log"),
                "-o", f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"]

    def init(self) -> None:
        self._run("initdb", "-D", self.data, "-A", "trust", "-U", "postgres")

    def start(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-w", *self._options(), "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", self.data, "-w", "-m", "fast", "stop")

    def restart(self) -> None:
        """Shut down (fast: sessions are ended) and start again, as a restart or a
        failover does; returns once it accepts connections."""
        self._run("pg_ctl", "-D", self.data, "-w", "-m", "fast", *self._options(), "restart")


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    if not PG_BIN:
        pytest.skip("PostgreSQL server binaries not installed (/usr/lib/postgresql/*/bin)")
    root = tempfile.mkdtemp(prefix="taskgate-pg-")
    os.chmod(root, 0o777)
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    cluster = Cluster(root, free_port())
    cluster.init()
    cluster.start()
    try:
        yield cluster
    finally:
        try:
            cluster.stop()
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    """A throwaway cluster for the test (tests that restart or reconfigure PostgreSQL)."""
    with throwaway_cluster() as c:
        yield c
