"""The typed token objects that a validated JWT becomes, and the token errors."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from taskgate.tokens.refusals import Refusal

MAX_JTI_LENGTH = 128
# A JWK SHA-256 thumbprint (RFC 7638), base64url without padding: 32 bytes, 43 characters.
JKT = re.compile(r"[A-Za-z0-9_-]{43}")


class TokenType(StrEnum):
    """The token types carried in the ``scope`` claim."""

    EXECUTION = "execution"  # short-lived; every authenticated route
    WORKLOAD = "workload"  # issued at queue time; only routes that opt in (today: /run)


class InvalidToken(Exception):
    """Signature or standard claims are wrong.

    ``refusal`` says which check failed (the client gets its code in a header);
    ``reason`` is the validator's own words, for logs only; clients see ``detail``, which
    leaks nothing.
    """

    refusal: Refusal = Refusal.INVALID_TOKEN

    def __init__(self, reason: str, refusal: Refusal | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        if refusal is not None:
            self.refusal = refusal

    @property
    def detail(self) -> str:
        return "Invalid auth token"


class InvalidTokenClaims(InvalidToken):
    """Well-signed, but the claims are not of the token schema (e.g. ``sub`` not a UUID)."""

    refusal = Refusal.INVALID_CLAIMS

    @property
    def detail(self) -> str:
        return f"Invalid auth token: {self.reason}"


class InvalidTokenScope(InvalidToken):
    """Well-signed, but ``scope`` is not a known token type."""

    refusal = Refusal.INVALID_SCOPE

    def __init__(self, scope: object) -> None:
        super().__init__(f"unknown scope {scope!r}")
        self.scope = scope

    @property
    def detail(self) -> str:
        return f"Invalid token scope: {self.scope}"


@dataclass(frozen=True, slots=True)
class TaskToken:
    """A validated token, bound to one task instance (``sub``)."""

    token_type: ClassVar[TokenType]

    sub: uuid.UUID
    jti: str
    iat: float
    nbf: float | None
    exp: float
    claims: dict[str, Any]
    # The thumbprint of the key this token is bound to (``cnf.jkt``, RFC 9449 §6); None:
    # a bearer token.
    jkt: str | None = None

    @property
    def ti_id(self) -> uuid.UUID:
        return self.sub

    @property
    def lifetime(self) -> float:
        return self.exp - self.iat


@dataclass(frozen=True, slots=True)
class ExecutionToken(TaskToken):
    token_type: ClassVar[TokenType] = TokenType.EXECUTION


@dataclass(frozen=True, slots=True)
class WorkloadToken(TaskToken):
    token_type: ClassVar[TokenType] = TokenType.WORKLOAD


TOKEN_CLASSES: dict[TokenType, type[TaskToken]] = {
    TokenType.EXECUTION: ExecutionToken,
    TokenType.WORKLOAD: WorkloadToken,
}


def _time_claim(claims: dict[str, Any], name: str, *, required: bool) -> float | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidTokenClaims(f"claim {name!r} is not a number")
    return float(value)


def _bound_key(claims: dict[str, Any]) -> str | None:
    if "cnf" not in claims:
        return None
    confirmation = claims["cnf"]
    jkt = confirmation.get("jkt") if isinstance(confirmation, dict) else None
    if not (isinstance(jkt, str) and JKT.fullmatch(jkt)):
        # A confirmation we cannot enforce must not leave the token usable as a bearer one.
        raise InvalidTokenClaims("claim 'cnf' is not a key thumbprint binding ('jkt')")
    return jkt


def token_from_claims(claims: dict[str, Any]) -> TaskToken:
    """Build the typed token from verified claims, or raise if they are not our schema."""
    scope = claims.get("scope", TokenType.EXECUTION.value)
    try:
        token_type = TokenType(scope)
    except ValueError:
        raise InvalidTokenScope(scope) from None
    sub = claims.get("sub")
    try:
        ti_id = uuid.UUID(sub) if isinstance(sub, str) else None
    except ValueError:
        ti_id = None
    if ti_id is None:
        raise InvalidTokenClaims("claim 'sub' is not a task instance UUID")
    jti = claims.get("jti")
    if jti is not None and not (isinstance(jti, str) and 0 < len(jti) <= MAX_JTI_LENGTH):
        raise InvalidTokenClaims("claim 'jti' is not a string of 1 to 128 characters")
    if token_type is TokenType.WORKLOAD and jti is None:
        raise InvalidTokenClaims("a workload token needs a 'jti' (it is single-use)")
    return TOKEN_CLASSES[token_type](
        sub=ti_id,
        jkt=_bound_key(claims),
        jti=jti or "",
        iat=_time_claim(claims, "iat", required=True),  # type: ignore[arg-type]
        nbf=_time_claim(claims, "nbf", required=False),
        exp=_time_claim(claims, "exp", required=True),  # type: ignore[arg-type]
        claims=claims,
    )
