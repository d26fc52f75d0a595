"""One task instance, from ``/run`` to the final state report.

1. ``/run`` with the workload token (the client swaps to the execution token it returns,
   bound to the client's in-memory DPoP key unless the worker runs with ``--no-dpop``);
2. the command runs as a child with ``$TASKGATE_XCOM_FILE`` and the TI's identity in its
   environment (never a token: the command gets no more access than it needs);
3. heartbeats every interval from a thread; SIGTERM/SIGINT are forwarded to the command;
4. the outcome: exit 0 -> ``success`` (after pushing the ``return_value`` XCom the command
   wrote, if any); a signal -> ``failed``; any other exit -> ``up_for_retry`` when the run
   context says the TI should retry, else ``failed``. When the heartbeat learns that the TI
   is no longer this worker's (409/403/404), the command is stopped and no state is
   reported: the server already holds the TI's state.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from taskgate.client import Client
from taskgate.client.errors import ApiError
from taskgate.client.routes import FinalState
from taskgate.client.token import bound_key
from taskgate.signals import handling_stop_signals
from taskgate.worker.child import Child, exit_code
from taskgate.worker.console import WorkerConsole
from taskgate.worker.heartbeat import Heartbeater
from taskgate.worker.progress import Progress
from taskgate.worker.workload import Workload, WorkloadTI

XCOM_FILE_ENV = "TASKGATE_XCOM_FILE"


@dataclass(frozen=True)
class WorkerOptions:
    heartbeat_interval: float = 5.0
    stop_timeout: float = 10.0  # after a forwarded signal, then SIGKILL


class WorkerError(Exception):
    """The worker could not do its job; ``exit_code`` is what the process exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def described(exc: ApiError) -> str:
    """``exc`` with its reason code when the message does not say it (a refused DPoP proof
    reads "Invalid DPoP proof"; the code says which check failed)."""
    if exc.reason and exc.reason not in exc.message and " " not in exc.reason:
        return f"{exc} ({exc.reason})"
    return str(exc)


def task_environment(ti: WorkloadTI, xcom_file: Path) -> dict[str, str]:
    return {
        **os.environ,
        XCOM_FILE_ENV: str(xcom_file),
        "TASKGATE_TI_ID": str(ti.id),
        "TASKGATE_DAG_ID": ti.dag_id,
        "TASKGATE_RUN_ID": ti.run_id,
        "TASKGATE_TASK_ID": ti.task_id,
        "TASKGATE_MAP_INDEX": str(ti.map_index),
        "TASKGATE_TRY_NUMBER": str(ti.try_number),
    }


class TaskRun:
    def __init__(
        self, api: Client, workload: Workload, console: WorkerConsole, options: WorkerOptions
    ) -> None:
        self.api = api
        self.ti = workload.ti
        self.console = console
        self.options = options
        self.progress = Progress()
        self.hostname = socket.gethostname()
        self.pid = os.getpid()  # heartbeats come from this process, not the command's
        self.child: Child | None = None
        self.interrupted: int | None = None  # the signal the worker received
        self.stopping_since: float | None = None
        self.should_retry = False

    def execute(self, command: Sequence[str]) -> int:
        if shutil.which(command[0]) is None:  # before /run: the workload token stays unused
            raise WorkerError(f"command not found: {command[0]}", 127)
        with handling_stop_signals(self._forward):
            self._start()
            with tempfile.TemporaryDirectory(prefix="taskgate-xcom-") as scratch:
                xcom_file = Path(scratch) / "return_value.json"
                returncode, heartbeater = self._run_child(command, xcom_file)
                return self._conclude(returncode, heartbeater, xcom_file)

    def _start(self) -> None:
        try:
            context = self.api.run(
                self.ti.id, hostname=self.hostname, unixname=getpass.getuser(), pid=self.pid
            )
        except ApiError as exc:
            raise WorkerError(
                f"cannot start task instance {self.ti.id}: {described(exc)}"
            ) from None
        self.should_retry = context.should_retry
        self.progress.state = "running"
        ti = self.ti
        self.console.note(
            f"running {ti.dag_id}/{ti.run_id}/{ti.task_id} (task instance {ti.id}, "
            f"try {ti.try_number}) on {self.hostname}, pid {self.pid}; {self._binding()}"
        )

    def _binding(self) -> str:
        """How the execution token is held, for the start note (a thumbprint is public)."""
        key, token = self.api.dpop_key, self.api.token
        jkt = bound_key(token) if token else None
        if key is None:
            return "bearer token (--no-dpop)"
        if jkt == key.thumbprint:
            return f"token bound to DPoP key {jkt}"
        return "the server issued an unbound token; proofs are sent but bind nothing"

    def _run_child(self, command: Sequence[str], xcom_file: Path) -> tuple[int, Heartbeater]:
        heartbeater = Heartbeater(
            lambda: self.api.heartbeat(self.ti.id, hostname=self.hostname, pid=self.pid),
            self.options.heartbeat_interval,
            on_lost=self._lost,
            on_failure=lambda exc: self.console.note(
                f"heartbeat failed, will retry: {described(exc)}"
            ),
        )
        try:
            self.child = Child(command, task_environment(self.ti, xcom_file), self.console.output)
        except OSError as exc:
            self.console.note(f"cannot start {command[0]}: {exc.strerror}")
            return 126, heartbeater
        if self.interrupted is not None:  # a signal came while starting
            self.child.signal(self.interrupted)
        heartbeater.start()
        try:
            returncode = self._supervise(self.child, heartbeater)
        finally:
            heartbeater.stop()
        self.child.drain()
        return returncode, heartbeater

    def _supervise(self, child: Child, heartbeater: Heartbeater) -> int:
        while (returncode := child.wait(0.5)) is None:
            if self.stopping_since is not None and (
                time.monotonic() - self.stopping_since > self.options.stop_timeout
            ):
                self.console.note(f"command did not stop within {self.options.stop_timeout:g} s; killing it")
                child.kill()
                self.stopping_since = float("inf")  # killed once
            self.console.progress(self.progress.line(heartbeater.count, self.api.token_refreshes))
        return returncode

    def _stop_child(self, signum: int) -> None:
        if self.stopping_since is None:
            self.stopping_since = time.monotonic()
        if self.child is not None:
            self.child.signal(signum)

    def _lost(self, exc: ApiError) -> None:
        self.console.note(f"the task instance is no longer ours ({exc}); stopping the command")
        self.progress.state = "stopping"
        self._stop_child(signal.SIGTERM)

    def _forward(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT while the command runs: stop the command, report what it did."""
        self.interrupted = signum
        self.progress.state = "stopping"
        self.console.note(f"received {signal.Signals(signum).name}; stopping the command")
        self._stop_child(signum)

    def _conclude(self, returncode: int, heartbeater: Heartbeater, xcom_file: Path) -> int:
        code = exit_code(returncode)
        if heartbeater.lost is not None:
            self.progress.state = "stopped"
            self._summary(heartbeater)
            return code or 1
        retry_or_fail: FinalState = "up_for_retry" if self.should_retry else "failed"
        state: FinalState
        if self.interrupted is not None:
            state, code = "failed", code or 128 + self.interrupted
        elif returncode == 0:
            state = "success"
            if not self._push_return_value(xcom_file):
                state, code = retry_or_fail, 1
        else:
            self.console.note(f"command exited with {code}")
            state = retry_or_fail
        try:
            self.api.finish(self.ti.id, state)
        except ApiError as exc:
            self.console.note(f"could not report {state}: {exc}")
            self.progress.state = f"{state} (not reported)"
            self._summary(heartbeater)
            return code or 1
        self.progress.state = state
        self._summary(heartbeater)
        return code

    def _push_return_value(self, xcom_file: Path) -> bool:
        try:
            text = xcom_file.read_text() if xcom_file.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            self.console.note(f"cannot read {XCOM_FILE_ENV}: {exc}")
            return False
        if not text.strip():
            return True  # the command returned nothing
        try:
            value = json.loads(text)
        except ValueError as exc:
            self.console.note(f"{XCOM_FILE_ENV} does not hold JSON ({exc}); not pushed")
            return False
        ti = self.ti
        try:
            self.api.push_xcom(
                ti.dag_id, ti.run_id, ti.task_id, "return_value", value, map_index=ti.map_index
            )
        except ApiError as exc:
            self.console.note(f"could not push the return_value XCom: {exc}")
            return False
        return True

    def _summary(self, heartbeater: Heartbeater) -> None:
        self.console.finish()
        self.console.note(self.progress.line(heartbeater.count, self.api.token_refreshes))
