"""A worker's DPoP key in tests: real Ed25519 (or P-256) keys, proofs signed as RFC 9449
says, and anything else a test needs to sign instead."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from taskgate.tokens.dpop import access_token_hash, jwk_thumbprint


class ProofKey:
    """A key pair held by a client, and the proofs it signs."""

    def __init__(self, alg: str = "EdDSA") -> None:
        self.alg = alg
        if alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.jwk = OKPAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
            self.private_jwk = OKPAlgorithm.to_jwk(self.private, as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
            self.private_jwk = ECAlgorithm.to_jwk(self.private, as_dict=True)
        self.jkt = jwk_thumbprint(self.jwk)

    def proof(self, method: str, url: str, token: str | None = None, *,
              headers: dict[str, Any] | None = None, key: Any = None, alg: str | None = None,
              **claims: Any) -> str:
        """A proof for ``method`` ``url`` (and ``token``'s hash); ``claims``, ``headers``
        (None removes one), ``key`` and ``alg`` replace what a correct client would send."""
        body: dict[str, Any] = {"jti": uuid.uuid4().hex, "htm": method, "htu": url,
                                "iat": int(time.time())}
        if token is not None:
            body["ath"] = access_token_hash(token)
        body.update(claims)
        header = {"typ": "dpop+jwt", "jwk": self.jwk, **(headers or {})}
        return jwt.encode({k: v for k, v in body.items() if v is not None},
                          self.private if key is None else key, algorithm=alg or self.alg,
                          headers={k: v for k, v in header.items() if v is not None})

    def headers(self, method: str, url: str, token: str, **over: Any) -> dict[str, str]:
        """``Authorization: DPoP`` and a fresh proof, for a request with a bound token."""
        return {"Authorization": f"DPoP {token}", "DPoP": self.proof(method, url, token, **over)}
