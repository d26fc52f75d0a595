"""DPoP server nonces (RFC 9449 §8): minted and checked, with nothing stored.

A nonce is a Fernet token of a fixed text, made with the Fernet keys every replica
already shares (``TASKGATE_FERNET_KEYS``): a nonce minted by one replica is accepted by
all, and Fernet's own timestamp says how old it is. Each process mints a new one every
``ROTATE_SECONDS`` and accepts one up to ``LIFETIME_SECONDS`` old.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from cryptography.fernet import InvalidToken, MultiFernet

ROTATE_SECONDS = 60
LIFETIME_SECONDS = 2 * ROTATE_SECONDS
_TEXT = b"taskgate dpop nonce"
_FERNET_TOKEN = re.compile(r"[A-Za-z0-9_-]+={0,2}")


class Nonces:
    """Mints and checks nonces with ``fernet`` (the process's secret box keys)."""

    def __init__(self, fernet: MultiFernet, clock: Callable[[], float] = time.time) -> None:
        self._fernet = fernet
        self._clock = clock
        self._current = ""
        self._minted_at = float("-inf")

    def current(self) -> str:
        now = self._clock()
        if now - self._minted_at >= ROTATE_SECONDS:
            self._current = self._fernet.encrypt_at_time(_TEXT, int(now)).decode()
            self._minted_at = now
        return self._current

    def accepts(self, nonce: str) -> bool:
        if not _FERNET_TOKEN.fullmatch(nonce):
            return False  # base64 decoding would ignore what follows the padding
        if nonce == self._current:
            return self._clock() - self._minted_at < LIFETIME_SECONDS
        try:
            text = self._fernet.decrypt_at_time(
                nonce.encode(), LIFETIME_SECONDS, int(self._clock())
            )
        except (InvalidToken, UnicodeEncodeError):
            return False
        return text == _TEXT
