"""The heartbeat thread: keeps the running TI alive while its command runs."""

from __future__ import annotations

import threading
from collections.abc import Callable

from taskgate.client.errors import ApiError, Conflict, NotFound, TokenRejected

# Answers that mean this worker no longer runs the TI: another process does (409), the TI
# ended or was re-queued, its tokens were revoked (403), it is gone (404). The command must
# stop; retrying cannot help.
LOST = (Conflict, TokenRejected, NotFound)
# DPoP refusals about one proof's timing or reuse, not about the TI or the key: a clock
# that stepped, a proxy that replayed a request. The next beat signs a new proof.
PROOF_TIMING = frozenset({"proof_expired", "proof_not_yet_valid", "proof_replayed"})


class Heartbeater:
    def __init__(
        self,
        beat: Callable[[], None],
        interval: float,
        *,
        on_lost: Callable[[ApiError], None],
        on_failure: Callable[[ApiError], None],
    ) -> None:
        self._beat = beat
        self.interval = interval
        self._on_lost = on_lost
        self._on_failure = on_failure
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="taskgate-heartbeat", daemon=True)
        self.count = 0
        self.lost: ApiError | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating. A beat in flight (perhaps retrying through an outage) is not
        waited for: its answer is ignored, so the final state report goes out at once."""
        self._stop.set()
        self._thread.join(timeout=0.5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self._beat()
            except LOST as exc:
                if isinstance(exc, TokenRejected) and exc.reason in PROOF_TIMING:
                    if not self._stop.is_set():
                        self._on_failure(exc)
                    continue
                if not self._stop.is_set():  # after stop(), a 409 just means "reported"
                    self.lost = exc
                    self._on_lost(exc)
                return
            except ApiError as exc:
                # Retries are spent (server down or failing): keep the command running and
                # beat again next interval; the server decides when a TI is a zombie.
                if not self._stop.is_set():
                    self._on_failure(exc)
            else:
                self.count += 1
