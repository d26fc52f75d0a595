"""Task instance states and which transitions the Execution API may make."""

from __future__ import annotations

from enum import StrEnum


class TIState(StrEnum):
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    SKIPPED = "skipped"
    UPSTREAM_FAILED = "upstream_failed"
    REMOVED = "removed"
    RESTARTING = "restarting"
    UP_FOR_RETRY = "up_for_retry"
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    DEFERRED = "deferred"
    AWAITING_INPUT = "awaiting_input"


TERMINAL = frozenset(
    {TIState.SUCCESS, TIState.FAILED, TIState.SKIPPED, TIState.UPSTREAM_FAILED, TIState.REMOVED}
)
# /run may only start a TI that the control plane queued (or that is being restarted).
STARTABLE = frozenset({TIState.QUEUED, TIState.RESTARTING})
# The control plane may queue a TI from these; a terminal state is final.
QUEUEABLE = frozenset(
    {
        TIState.SCHEDULED,
        TIState.UP_FOR_RETRY,
        TIState.UP_FOR_RESCHEDULE,
        TIState.DEFERRED,
        TIState.AWAITING_INPUT,
    }
)
# Queuing from these starts a new try; resuming a rescheduled or deferred TI does not.
NEW_TRY_FROM = frozenset({TIState.SCHEDULED, TIState.UP_FOR_RETRY})
# skip-downstream touches only TIs that have not started yet.
SKIPPABLE = frozenset({TIState.SCHEDULED, TIState.QUEUED, TIState.UP_FOR_RETRY})
