"""A server stopped by SIGTERM or SIGINT exits 0 once it has shut down gracefully.

Uvicorn handles both signals while it serves (it stops accepting connections, lets the
requests in flight finish, runs the lifespan shutdown) and then raises the signal again
with the handlers it found at start, so that the process ends "by the signal"
(status -15). A stop that the operator asked for and that went as planned is a success
for a supervisor that looks at the exit status; these handlers turn it into exit 0. A
signal that arrives before uvicorn serves ends start-up the same way.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from types import FrameType

from taskgate.signals import handling_stop_signals


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def clean_exit_on_stop_signals() -> AbstractContextManager[None]:
    return handling_stop_signals(_exit_cleanly)
