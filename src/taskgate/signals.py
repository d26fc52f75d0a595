"""Handling SIGTERM and SIGINT for the length of a block, then restoring what was there.

Shared by ``taskgate serve`` (a stop that went as planned exits 0) and ``taskgate worker
run`` (the signals are forwarded to the task's command).
"""

from __future__ import annotations

import signal
import threading
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


def also_on_stop_signals(callback: Callable[[], object]) -> Callable[[], None]:
    """Call ``callback`` on SIGTERM/SIGINT before whatever handles them now (the server's
    own graceful stop); returns the undo. Outside the main thread, where no signal handler
    can be set, it does nothing.

    The server needs it for what would otherwise hold its stop: uvicorn lets requests in
    flight finish before it stops, and an event stream never finishes by itself.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    # A signal ignored (SIG_IGN), or handled outside Python (None), stops nothing: it is
    # left as it is, or the callback would end streams of a server that goes on.
    previous = {
        sig: handler for sig in STOP_SIGNALS
        if (handler := signal.getsignal(sig)) not in (signal.SIG_IGN, None)
    }

    def chained(signum: int, frame: FrameType | None) -> None:
        handler = previous[signal.Signals(signum)]
        try:
            callback()
        finally:  # whatever the callback does, the stop goes on
            if callable(handler):
                handler(signum, frame)
            else:  # SIG_DFL: what the signal would have done without us
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, chained)

    def undo() -> None:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is chained:
                signal.signal(sig, handler)

    return undo
