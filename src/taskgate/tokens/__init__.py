"""Token cryptography, standing alone: keys, minting and validation of task JWTs.

Nothing here knows about HTTP, routes or the database.
"""

from taskgate.tokens.cache import CachedTokenValidator
from taskgate.tokens.claims import (
    ExecutionToken,
    InvalidToken,
    InvalidTokenClaims,
    InvalidTokenScope,
    TaskToken,
    TokenType,
    WorkloadToken,
)
from taskgate.tokens.issuer import TokenIssuer
from taskgate.tokens.keys import KeyType, SigningKey, VerificationKey, jwks_document
from taskgate.tokens.refusals import Refusal
from taskgate.tokens.validator import TokenValidator

__all__ = [
    "CachedTokenValidator",
    "ExecutionToken",
    "InvalidToken",
    "InvalidTokenClaims",
    "InvalidTokenScope",
    "KeyType",
    "Refusal",
    "SigningKey",
    "TaskToken",
    "TokenIssuer",
    "TokenType",
    "TokenValidator",
    "VerificationKey",
    "WorkloadToken",
    "jwks_document",
]
