"""The command a worker runs, as a child process in its own process group.

Its own session keeps a terminal's Ctrl-C from reaching it behind the worker's back: the
worker forwards signals itself, to the whole group (the command's own children too), and
kills the group when the command does not stop in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence


class Child:
    def __init__(
        self, command: Sequence[str], env: Mapping[str, str], output: Callable[[bytes], None]
    ) -> None:
        self.process = subprocess.Popen(
            list(command),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream: the log keeps the order lines came in
            start_new_session=True,
        )
        self._output = output
        self._pump = threading.Thread(target=self._copy_output, name="taskgate-output", daemon=True)
        self._pump.start()

    def wait(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the command's process group (safe from any thread)."""
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass  # already gone

    def kill(self) -> None:
        self.signal(signal.SIGKILL)

    def drain(self, timeout: float = 5.0) -> None:
        """Wait for the rest of the output (a grandchild that keeps the pipe open is not
        waited for longer than ``timeout``)."""
        self._pump.join(timeout)

    def _copy_output(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        with stream:
            for line in iter(stream.readline, b""):
                self._output(line)


def exit_code(returncode: int) -> int:
    """A shell's view of a return code: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode
