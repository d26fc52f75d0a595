"""also_on_stop_signals: a callback in front of the stop signals' handlers."""

import os
import signal

import pytest

from taskgate.signals import also_on_stop_signals


def test_the_callback_runs_then_the_handler_before_it_even_if_the_callback_fails():
    seen: list[str] = []
    previous = signal.signal(signal.SIGTERM, lambda *_: seen.append("handler"))

    def failing() -> None:
        seen.append("callback")
        raise RuntimeError("boom")

    undo = also_on_stop_signals(failing)
    try:
        with pytest.raises(RuntimeError):
            os.kill(os.getpid(), signal.SIGTERM)
        assert seen == ["callback", "handler"]
    finally:
        undo()
        assert signal.getsignal(signal.SIGTERM) is not None
        signal.signal(signal.SIGTERM, previous)


def test_an_ignored_signal_stays_ignored():
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    called: list[int] = []
    undo = also_on_stop_signals(lambda: called.append(1))
    try:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        os.kill(os.getpid(), signal.SIGINT)  # ignored: nothing happens
        assert called == []
    finally:
        undo()
        signal.signal(signal.SIGINT, previous)
