"""The token a client sends, swapped for the fresh one the server hands out.

The server re-issues an execution token in ``Refreshed-API-Token`` when the one sent is
close to expiry, and ``/run`` answers a workload token with an execution token the same
way. Every later call must use the newest token, whichever thread made the call that
received it (a worker's heartbeat thread and its main thread share one client).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from typing import Any

import httpx

from taskgate.wire.http import REFRESHED_TOKEN_HEADER


def unverified_claims(token: str) -> dict[str, Any]:
    """The token's claims, read without checking the signature: the client only uses them
    to order tokens it received from the server and to choose how to send them, never to
    decide what is allowed."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def bound_key(token: str) -> str | None:
    """The thumbprint of the key ``token`` is bound to (its ``cnf.jkt``), None for a
    bearer token: it decides whether the token is sent as ``DPoP`` or ``Bearer``. Read
    unverified too; the server checks the binding, whatever the client sends."""
    confirmation = unverified_claims(token).get("cnf")
    jkt = confirmation.get("jkt") if isinstance(confirmation, dict) else None
    return jkt if isinstance(jkt, str) else None


def _expiry(claims: dict[str, Any]) -> float:
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) else float("-inf")


def _authorization(token: str | None) -> str | None:
    """The ``Authorization`` header value that sends ``token``: ``DPoP`` when it is bound
    to a key, else ``Bearer``."""
    if token is None:
        return None
    return f"{'DPoP' if bound_key(token) is not None else 'Bearer'} {token}"


class TokenHolder:
    def __init__(self, token: str | None) -> None:
        # The token and how it is sent, decided once per token, not per request, and read
        # together: a refresh from another thread swaps both at once.
        self._held = (token, _authorization(token))
        self._lock = threading.Lock()
        self.refreshes = 0  # execution tokens replaced by fresher ones (not the /run exchange)

    @property
    def current(self) -> str | None:
        return self._held[0]

    @property
    def held(self) -> tuple[str | None, str | None]:
        """The token and its ``Authorization`` header value, from one moment."""
        return self._held

    def _set(self, token: str | None) -> None:
        self._held = (token, _authorization(token))

    def replace(self, token: str | None) -> None:
        with self._lock:
            self._set(token)

    def pick_up(self, response: httpx.Response) -> None:
        fresh = response.headers.get(REFRESHED_TOKEN_HEADER)
        if not fresh:
            return
        with self._lock:
            current = self._held[0]
            claims = unverified_claims(current) if current else {}
            exchanged = claims.get("scope") == "workload"
            # Two threads may each receive a fresh token; keep the one that lives longer.
            if not exchanged and _expiry(unverified_claims(fresh)) < _expiry(claims):
                return
            self._set(fresh)
            if not exchanged:
                self.refreshes += 1
