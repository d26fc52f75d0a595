"""Checking tokens: signature with the key named by ``kid``, its pinned algorithm only,
standard claims, then the token schema. Every failure is an ``InvalidToken`` whose
``refusal`` names the check that failed. The signature is checked before any claim, so a
claim's reason (``token_expired``, ``audience_mismatch``, ...) is only ever given for a
token this server's key signed."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

import jwt

from taskgate.tokens.claims import InvalidToken, TaskToken, token_from_claims
from taskgate.tokens.keys import VerificationKey
from taskgate.tokens.refusals import Refusal

# Headers that would let a token choose its own key or impose processing rules we do not
# implement (RFC 8725 §3.10 / RFC 7515 §4.1.11): a token carrying any of them is refused.
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c", "crit"})

MAX_TOKEN_BYTES = 8192

# PyJWT's exceptions, most specific first (isinstance order matters: ExpiredSignatureError
# and the rest are all DecodeError or InvalidTokenError subclasses).
_PYJWT_REFUSALS: tuple[tuple[type[jwt.PyJWTError], Refusal], ...] = (
    (jwt.ExpiredSignatureError, Refusal.TOKEN_EXPIRED),
    (jwt.ImmatureSignatureError, Refusal.NOT_YET_VALID),
    (jwt.InvalidAudienceError, Refusal.AUDIENCE_MISMATCH),
    (jwt.InvalidIssuerError, Refusal.ISSUER_MISMATCH),
    (jwt.MissingRequiredClaimError, Refusal.MISSING_CLAIM),
    (jwt.InvalidSignatureError, Refusal.BAD_SIGNATURE),
    (jwt.exceptions.InvalidSubjectError, Refusal.INVALID_CLAIMS),
    (jwt.InvalidIssuedAtError, Refusal.INVALID_CLAIMS),
    (jwt.exceptions.InvalidJTIError, Refusal.INVALID_CLAIMS),
    (jwt.DecodeError, Refusal.MALFORMED_TOKEN),
)


def _header_names(raw: str) -> set[str]:
    """The names in a token's header, for explaining a header PyJWT would not read
    (empty if it is not even a JSON object)."""
    try:
        header = json.loads(base64.urlsafe_b64decode(raw.split(".", 1)[0] + "=="))
    except (ValueError, UnicodeDecodeError):
        return set()
    return set(header) if isinstance(header, dict) else set()


def _refusal_of(exc: jwt.PyJWTError) -> Refusal:
    return next((r for kind, r in _PYJWT_REFUSALS if isinstance(exc, kind)), Refusal.INVALID_TOKEN)


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
            raise InvalidToken("token too large", Refusal.TOKEN_TOO_LARGE)
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as exc:
            # PyJWT refuses an unknown ``crit`` while reading the header: say so.
            refusal = (
                Refusal.FORBIDDEN_HEADER if "crit" in _header_names(raw) else Refusal.MALFORMED_TOKEN
            )
            raise InvalidToken(f"malformed token: {exc}", refusal) from None
        if _FORBIDDEN_HEADERS.intersection(header):
            raise InvalidToken(
                f"forbidden header(s): {sorted(_FORBIDDEN_HEADERS & set(header))}",
                Refusal.FORBIDDEN_HEADER,
            )
        kid = header.get("kid")
        key = self._keys.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise InvalidToken(f"unknown kid {kid!r}", Refusal.UNKNOWN_KEY)
        if header.get("alg") != key.algorithm:
            raise InvalidToken(
                f"alg {header.get('alg')!r} is not the key's {key.algorithm}",
                Refusal.ALGORITHM_NOT_ALLOWED,
            )
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
            raise InvalidToken(f"{type(exc).__name__}: {exc}", _refusal_of(exc)) from None
        return token_from_claims(claims)
