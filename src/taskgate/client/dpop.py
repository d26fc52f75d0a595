"""The client's DPoP key (RFC 9449): an Ed25519 key pair that lives in this process's
memory only, and the proof it signs for each request.

A worker generates one per task attempt. ``/run`` binds the execution token it issues to
the key's thumbprint (``cnf.jkt``), and from then on every request must carry a fresh
proof signed by the key: a copy of the token alone (from a log, a process listing, a
proxy) is refused. So the private half is never written anywhere: not to a file, a log
line, a ``repr`` or a pickle; only its public JWK and thumbprint are shown.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, NoReturn

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import OKPAlgorithm

from taskgate.tokens.dpop import DPOP_PROOF_TYPE, access_token_hash, jwk_thumbprint
from taskgate.wire.http import DPOP_NONCE_HEADER

PROOF_ALGORITHM = "EdDSA"


class DPoPKey:
    """An Ed25519 key generated in memory, and the DPoP proofs it signs.

    Signing is safe from several threads at once (a worker's heartbeat thread and its
    main thread share one client): each proof gets its own random ``jti``, which the
    server accepts once.
    """

    __slots__ = ("__private", "jwk", "nonce", "thumbprint")

    def __init__(self) -> None:
        self.__private = ed25519.Ed25519PrivateKey.generate()
        # The public JWK a proof carries in its header: the members RFC 7638 hashes.
        self.jwk: dict[str, str] = OKPAlgorithm.to_jwk(
            self.__private.public_key(), as_dict=True
        )
        self.thumbprint = jwk_thumbprint(self.jwk)  # the cnf.jkt of a token bound to it
        # The server's latest DPoP-Nonce, put into every proof once it has sent one.
        self.nonce: str | None = None

    def proof(self, method: str, url: str, token: str | None = None) -> str:
        """A fresh proof for a ``method`` request to ``url`` (the full URL the request is
        sent to, without query or fragment), carrying the hash of ``token`` if given."""
        claims: dict[str, Any] = {
            "jti": secrets.token_urlsafe(16),
            "htm": method,
            "htu": url,
            "iat": int(time.time()),
        }
        if token is not None:
            claims["ath"] = access_token_hash(token)
        if self.nonce is not None:
            claims["nonce"] = self.nonce
        return jwt.encode(
            claims, self.__private, algorithm=PROOF_ALGORITHM,
            headers={"typ": DPOP_PROOF_TYPE, "jwk": self.jwk},
        )

    def pick_up_nonce(self, response: httpx.Response) -> bool:
        """Keep the server's ``DPoP-Nonce`` from ``response``, if it sent one."""
        nonce = response.headers.get(DPOP_NONCE_HEADER)
        if nonce:
            self.nonce = nonce
        return bool(nonce)

    def __repr__(self) -> str:
        return f"DPoPKey(thumbprint={self.thumbprint!r})"

    # The private key must not leave the process: no pickling (multiprocessing, caches),
    # no copies that would outlive the client holding it.
    def __reduce__(self) -> NoReturn:
        raise TypeError("a DPoPKey cannot be pickled: its private key stays in memory")

    def __copy__(self) -> NoReturn:
        raise TypeError("a DPoPKey cannot be copied; share the object instead")

    def __deepcopy__(self, memo: dict[int, Any]) -> NoReturn:
        raise TypeError("a DPoPKey cannot be copied; share the object instead")


def dpop_key(option: bool | DPoPKey | None) -> DPoPKey | None:
    """The key a client's ``dpop`` option names: a fresh one for True, that one for a
    ``DPoPKey`` (shared by several clients of one process), none for False/None."""
    if isinstance(option, DPoPKey):
        return option
    return DPoPKey() if option else None
