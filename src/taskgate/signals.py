"""Handling SIGTERM and SIGINT for the length of a block, then restoring what was there.

Shared by ``taskgate serve`` (a stop that went as planned exits 0) and ``taskgate worker
run`` (the signals are forwarded to the task's command).
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

Handler = Callable[[int, FrameType | None], object]


@contextmanager
def handling_stop_signals(handler: Handler) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
