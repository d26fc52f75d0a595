"""When the client tries an idempotent call again, and how long it waits in between."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by a number of attempts and a deadline.

    Only idempotent calls are retried (see ``Call.idempotent``), and only after no answer
    (connection refused or lost, timeout) or a 5xx. The wait before retry ``n`` (0-based)
    is drawn from ``[cap / 2, cap]`` with ``cap = min(max_delay, first_delay * 2**n)``:
    the jitter keeps many workers from retrying in lock-step after an outage, the lower
    bound keeps the backoff growing. A ``Retry-After`` answer raises the wait (up to
    ``max_delay``).
    """

    attempts: int = 10  # including the first
    first_delay: float = 0.25
    max_delay: float = 8.0
    deadline: float = 60.0  # seconds after the first attempt; no retry would start later

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.first_delay < 0 or self.max_delay < self.first_delay or self.deadline < 0:
            raise ValueError("need 0 <= first_delay <= max_delay and deadline >= 0")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        cap = min(self.max_delay, self.first_delay * 2**retry)
        wait = cap / 2 + random.random() * cap / 2  # noqa: S311 - jitter, not cryptography
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait

    def next_delay(self, retry: int, elapsed: float, retry_after: float | None = None) -> float | None:
        """The wait before retry number ``retry``, or None when the budget is spent."""
        if retry + 1 >= self.attempts:
            return None
        wait = self.delay(retry, retry_after)
        return None if elapsed + wait > self.deadline else wait


NO_RETRIES = RetryPolicy(attempts=1)
