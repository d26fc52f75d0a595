"""The worker's progress line: state, elapsed time, heartbeats (and token refreshes)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


def elapsed_text(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


@dataclass
class Progress:
    state: str = "starting"
    started: float = field(default_factory=time.monotonic)

    def line(self, heartbeats: int, refreshes: int) -> str:
        elapsed = elapsed_text(time.monotonic() - self.started)
        beats = f"{heartbeats} heartbeat{'' if heartbeats == 1 else 's'}"
        line = f"{self.state} · {elapsed} · {beats}"
        if refreshes:
            line += f" · {refreshes} token refresh{'' if refreshes == 1 else 'es'}"
        return line
