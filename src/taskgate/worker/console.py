"""Where a worker writes: the child's output and the worker's notes go to the console and
the log file; the live progress line goes to a terminal only.

One lock orders all writers (the output pump, the heartbeat thread's notes, the main
loop's progress) so that the progress line is wiped before any other line is written and
redrawn after it.
"""

from __future__ import annotations

import sys
import threading
from typing import BinaryIO, TextIO

CLEAR_LINE = "\r\x1b[2K"


class WorkerConsole:
    def __init__(
        self, log_file: BinaryIO, out: BinaryIO | None = None, err: TextIO | None = None
    ) -> None:
        self._log = log_file
        self._out = out or sys.stdout.buffer
        self._err = err or sys.stderr
        self._live = self._err.isatty()
        # Re-entrant: a signal handler may note a line while the main thread holds the lock.
        self._lock = threading.RLock()
        self._progress = ""

    def output(self, chunk: bytes) -> None:
        """A piece of the child's output."""
        with self._lock:
            self._wipe()
            self._out.write(chunk)
            self._out.flush()
            self._log.write(chunk)
            self._log.flush()
            self._draw()

    def note(self, text: str) -> None:
        """One line from the worker itself."""
        line = f"[taskgate] {text}\n"
        with self._lock:
            self._wipe()
            self._err.write(line)
            self._err.flush()
            self._log.write(line.encode("utf-8", "replace"))
            self._log.flush()
            self._draw()

    def progress(self, text: str) -> None:
        """Replace the live progress line (shown on a terminal only)."""
        with self._lock:
            self._progress = text
            self._wipe()
            self._draw()

    def finish(self) -> None:
        with self._lock:
            self._wipe()
            self._progress = ""

    def _wipe(self) -> None:
        if self._live and self._progress:
            self._err.write(CLEAR_LINE)

    def _draw(self) -> None:
        if self._live and self._progress:
            self._err.write(f"[taskgate] {self._progress}")
            self._err.flush()
