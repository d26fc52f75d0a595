"""Checking tokens: signature with the key named by ``kid``, its pinned algorithm only,
standard claims, then the token schema. Every failure is an ``InvalidToken``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jwt

from taskgate.tokens.claims import InvalidToken, TaskToken, token_from_claims
from taskgate.tokens.keys import VerificationKey

# Headers that would let a token choose its own key or impose processing rules we do not
# implement (RFC 8725 §3.10 / RFC 7515 §4.1.11): a token carrying any of them is refused.
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})

MAX_TOKEN_BYTES = 8192


class TokenValidator:
    def __init__(
        self,
        keys: Iterable[VerificationKey],
        *,
        audience: str,
        issuer: str | None = None,
        leeway: int = 10,
        max_token_bytes: int = MAX_TOKEN_BYTES,
    ) -> None:
        self._keys = {key.kid: key for key in keys}
        if not self._keys:
            raise ValueError("a token validator needs at least one key")
        self.audience = audience
        self.issuer = issuer
        self.leeway = leeway
        self.max_token_bytes = max_token_bytes
        required = ["aud", "exp", "iat", "sub"] + (["iss"] if issuer else [])
        self._options: dict[str, Any] = {"require": required}
        self.signature_checks = 0  # how many signatures this validator has verified

    @property
    def keys(self) -> list[VerificationKey]:
        return list(self._keys.values())

    def validate(self, raw: str) -> TaskToken:
        if len(raw) > self.max_token_bytes:
            raise InvalidToken("token too large")
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"malformed token: {exc}") from None
        if _FORBIDDEN_HEADERS.intersection(header):
            raise InvalidToken(f"forbidden header(s): {sorted(_FORBIDDEN_HEADERS & set(header))}")
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken(f"unknown kid {kid!r}")
        if header.get("alg") != key.algorithm:
            raise InvalidToken(f"alg {header.get('alg')!r} is not the key's {key.algorithm}")
        self.signature_checks += 1
        try:
            claims = jwt.decode(
                raw,
                key.key,
                algorithms=[key.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options=self._options,
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"{type(exc).__name__}: {exc}") from None
        return token_from_claims(claims)
