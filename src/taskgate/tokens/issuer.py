"""Minting tokens: one signing key, one algorithm, claims as docs/security.md, "Tokens", lists them."""

from __future__ import annotations

import math
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from taskgate.tokens.claims import TokenType
from taskgate.tokens.keys import SigningKey


@dataclass(frozen=True)
class IssuedToken:
    token: str
    exp: float  # seconds since the epoch


class TokenIssuer:
    def __init__(
        self,
        key: SigningKey,
        *,
        audience: str,
        issuer: str | None = None,
        execution_ttl: int = 600,
        workload_ttl: int = 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.key = key
        self.audience = audience
        self.issuer = issuer
        self.ttl = {TokenType.EXECUTION: execution_ttl, TokenType.WORKLOAD: workload_ttl}
        self._clock = clock
        self._headers = {"kid": key.kid}

    def issue(
        self,
        ti_id: uuid.UUID,
        token_type: TokenType = TokenType.EXECUTION,
        *,
        ttl: int | None = None,
        jkt: str | None = None,
    ) -> str:
        """A signed token for ``ti_id``; with ``jkt`` (a key's RFC 7638 thumbprint) bound
        to that key (``cnf.jkt``): usable only with a DPoP proof signed by it."""
        return self.mint(ti_id, token_type, ttl=ttl, jkt=jkt).token

    def mint(
        self,
        ti_id: uuid.UUID,
        token_type: TokenType = TokenType.EXECUTION,
        *,
        ttl: int | None = None,
        jkt: str | None = None,
    ) -> IssuedToken:
        """``issue``, with the token's expiry (``exp``) beside it."""
        # Millisecond precision: a per-TI revocation watermark must separate tokens issued
        # just before it from tokens issued just after (RFC 7519 NumericDate may be fractional).
        now = math.floor(self._clock() * 1000) / 1000
        exp = now + (ttl if ttl is not None else self.ttl[token_type])
        claims: dict[str, object] = {
            "aud": self.audience,
            "sub": str(ti_id),
            "iat": now,
            "nbf": now,
            "exp": exp,
            "jti": uuid.uuid4().hex,
            "scope": token_type.value,
        }
        if self.issuer:
            claims["iss"] = self.issuer
        if jkt is not None:
            claims["cnf"] = {"jkt": jkt}
        token = jwt.encode(claims, self.key.key, algorithm=self.key.algorithm,
                           headers=self._headers)
        return IssuedToken(token, exp)
