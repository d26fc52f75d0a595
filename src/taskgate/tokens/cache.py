"""A bounded cache of verified tokens, in front of the validator.

Checking an EdDSA signature costs more than the rest of a small request, and a worker
sends the same token many times (every heartbeat). The cache maps the SHA-256 digest of
the raw token to the token object the validator built, until the token's own ``exp``
(plus leeway, as the validator allows). Only successes are cached. A validator built
with other keys (key reload) comes with a new, empty cache. Revocation and ended TIs are
not the cache's business: the token gate checks them on every request.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable

from taskgate.tokens.claims import TaskToken
from taskgate.tokens.keys import VerificationKey
from taskgate.tokens.validator import TokenValidator


class CachedTokenValidator:
    def __init__(
        self,
        validator: TokenValidator,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.validator = validator
        self.max_entries = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, TaskToken] = OrderedDict()

    @property
    def keys(self) -> list[VerificationKey]:
        return self.validator.keys

    @property
    def signature_checks(self) -> int:
        return self.validator.signature_checks

    def validate(self, raw: str) -> TaskToken:
        digest = hashlib.sha256(raw.encode("utf-8", "surrogatepass")).digest()
        token = self._entries.get(digest)
        if token is not None:
            if self._clock() <= token.exp + self.validator.leeway:
                self._entries.move_to_end(digest)
                return token
            del self._entries[digest]
        token = self.validator.validate(raw)  # raises for anything invalid: not cached
        self._entries[digest] = token
        if len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        return token
