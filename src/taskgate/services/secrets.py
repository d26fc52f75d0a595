"""Secrets at rest: variable values and connection passwords and extras are stored as
Fernet tokens. Several keys may be configured (MultiFernet): the first encrypts, all
decrypt, and ``rotate`` re-encrypts under the first."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretKeyError(ValueError):
    """The configured Fernet keys cannot be used, or a stored value does not decrypt."""


class SecretBox:
    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise SecretKeyError("at least one Fernet key is needed")
        try:
            self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys])
        except (ValueError, TypeError) as exc:
            raise SecretKeyError(f"invalid Fernet key: {exc}") from None

    @property
    def keys(self) -> MultiFernet:
        """The keys, for other secrets every replica must share (DPoP nonces)."""
        return self._fernet

    def seal(self, value: str | None) -> str | None:
        return None if value is None else self._fernet.encrypt(value.encode()).decode()

    def open(self, stored: str | None) -> str | None:
        if stored is None:
            return None
        try:
            return self._fernet.decrypt(stored.encode()).decode()
        except InvalidToken:
            # Never echo the stored value: say only that the keys do not fit.
            raise SecretKeyError("a stored secret does not decrypt with the configured keys") from None

    def rotate(self, stored: str | None) -> str | None:
        return None if stored is None else self._fernet.rotate(stored.encode()).decode()


def read_key_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def create_key_file(path: Path) -> list[str]:
    """A new key file with one key, readable by its owner only (never overwrites)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    with open(path, "x", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
        fh.write(key + "\n")
    return [key]


def prepend_key(path: Path) -> list[str]:
    """Put a new key first in the key file (the old ones keep decrypting)."""
    keys = [Fernet.generate_key().decode(), *read_key_file(path)]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
        fh.write("\n".join(keys) + "\n")
    tmp.replace(path)
    return keys
