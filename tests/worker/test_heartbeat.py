"""The heartbeat thread tells a lost TI from a beat that failed: a refused DPoP proof's
timing (a clock that stepped, a replaying proxy) is a failed beat, retried next interval;
any other refusal of the token means the TI is no longer this worker's."""

from __future__ import annotations

import threading

import pytest

from taskgate.client.errors import ApiError, TokenRejected
from taskgate.worker.heartbeat import Heartbeater


def beating(*outcomes: ApiError | None) -> tuple[Heartbeater, list[ApiError], threading.Event]:
    """A heartbeater whose beats fail with ``outcomes`` in turn (None: accepted), then
    succeed; ``done`` is set once every outcome was used."""
    pending = list(outcomes)
    failures: list[ApiError] = []
    done = threading.Event()

    def beat() -> None:
        outcome = pending.pop(0) if pending else None
        if not pending:
            done.set()
        if outcome is not None:
            raise outcome

    def lost(exc: ApiError) -> None:
        done.set()

    return Heartbeater(beat, 0.01, on_lost=lost, on_failure=failures.append), failures, done


def refused(reason: str) -> TokenRejected:
    return TokenRejected("Invalid DPoP proof", status=401, reason=reason)


@pytest.mark.parametrize("reason", ["proof_expired", "proof_not_yet_valid", "proof_replayed"])
def test_a_proof_refused_for_its_timing_is_a_failed_beat(reason):
    heartbeater, failures, done = beating(refused(reason), None, None)
    heartbeater.start()
    assert done.wait(5)
    heartbeater.stop()
    assert heartbeater.lost is None
    assert [f.reason for f in failures] == [reason]
    assert heartbeater.count >= 1


@pytest.mark.parametrize("reason", ["key_mismatch", "missing_dpop_proof", "revoked"])
def test_any_other_refusal_loses_the_ti(reason):
    heartbeater, failures, done = beating(refused(reason))
    heartbeater.start()
    assert done.wait(5)
    heartbeater.stop()
    assert heartbeater.lost is not None and heartbeater.lost.reason == reason
    assert failures == []
