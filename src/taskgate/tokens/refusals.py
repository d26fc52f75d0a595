"""Why a task token is refused: one ``Refusal`` per reason, everywhere a token is refused.

The bearer step, ``require_auth``, the token gate, the heartbeat's write, the re-issue
middleware and the lifecycle service all speak of a refusal as a ``Refusal``. Its value,
``code``, is the ``reason`` of the audit event, of the ``taskgate_auth_denials_total``
metric and of the ``Taskgate-Reason`` response header; ``message`` is what the client is
told in the body (the Task SDK's wording: every kind of bad token is "Invalid auth token"
there, the header says which). Which HTTP status each one answers is the
security layer's business (``taskgate.security.request_auth``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Refusal(Enum):
    MISSING_TOKEN = "missing_token"
    MULTIPLE_AUTHORIZATION_HEADERS = "multiple_authorization_headers"
    # The token itself: which check of the validator (tokens.validator) failed.
    INVALID_TOKEN = "invalid_token"  # none of the more precise ones below
    MALFORMED_TOKEN = "malformed_token"
    TOKEN_TOO_LARGE = "token_too_large"
    FORBIDDEN_HEADER = "forbidden_header"  # jku, jwk, x5u, x5c or crit
    UNKNOWN_KEY = "unknown_key"  # no key with the token's kid
    ALGORITHM_NOT_ALLOWED = "algorithm_not_allowed"  # not the kid's pinned algorithm
    BAD_SIGNATURE = "bad_signature"
    TOKEN_EXPIRED = "token_expired"
    NOT_YET_VALID = "not_yet_valid"  # iat or nbf ahead of this server's clock
    AUDIENCE_MISMATCH = "audience_mismatch"
    ISSUER_MISMATCH = "issuer_mismatch"
    MISSING_CLAIM = "missing_claim"
    INVALID_CLAIMS = "invalid_claims"
    INVALID_SCOPE = "invalid_scope"
    # A token bound to a key (cnf.jkt) sent without a proof of that key (as Bearer).
    DPOP_PROOF_REQUIRED = "dpop_proof_required"
    TOKEN_NOT_BOUND = "token_not_bound"  # an unbound token sent as DPoP
    DAG_REQUIRES_DPOP = "dag_requires_dpop"  # /run without a proof, for a DPoP-only DAG
    # The DPoP proof of a bound token's request: missing, or which check failed
    # (tokens.dpop.DPoPReason, the same codes), or already used.
    MISSING_DPOP_PROOF = "missing_dpop_proof"
    MALFORMED_PROOF = "malformed_proof"
    PROOF_TOO_LARGE = "proof_too_large"
    PROOF_TYPE_INVALID = "proof_type_invalid"
    PROOF_ALGORITHM_NOT_ALLOWED = "proof_algorithm_not_allowed"
    PROOF_KEY_INVALID = "proof_key_invalid"
    BAD_PROOF_SIGNATURE = "bad_proof_signature"
    PROOF_MISSING_CLAIM = "proof_missing_claim"
    PROOF_METHOD_MISMATCH = "proof_method_mismatch"
    PROOF_URL_MISMATCH = "proof_url_mismatch"
    PROOF_EXPIRED = "proof_expired"
    PROOF_NOT_YET_VALID = "proof_not_yet_valid"
    ACCESS_TOKEN_HASH_MISMATCH = "access_token_hash_mismatch"
    KEY_MISMATCH = "key_mismatch"
    USE_DPOP_NONCE = "use_dpop_nonce"
    PROOF_REPLAYED = "proof_replayed"
    TOKEN_TYPE_NOT_ALLOWED = "token_type_not_allowed"
    SUBJECT_MISMATCH = "subject_mismatch"
    REVOKED = "revoked"
    TI_ENDED = "ti_ended"
    WORKLOAD_TOKEN_REUSED = "workload_token_reused"

    @property
    def code(self) -> str:
        return self.value

    @property
    def message(self) -> str:
        return _MESSAGES[self]

    @property
    def client_reason(self) -> str | None:
        """The ``reason`` the client sees, for a refusal told as ``{"reason", "message"}``."""
        return _CLIENT_REASONS.get(self)

    def detail(self, message: str | None = None, **fields: Any) -> str | dict[str, str]:
        """What the client is told: the message (``message`` instead, for a validator's
        own wording; ``fields`` fill its placeholders), as a plain string, or as
        ``{"reason", "message"}`` for a refusal that reads as a conflict."""
        text = message if message is not None else self.message.format(**fields)
        reason = self.client_reason
        return text if reason is None else {"reason": reason, "message": text}


_MESSAGES = {
    Refusal.MISSING_TOKEN: "Missing auth token",
    Refusal.MULTIPLE_AUTHORIZATION_HEADERS: "Multiple Authorization headers",
    **{
        refusal: "Invalid auth token"
        for refusal in (
            Refusal.INVALID_TOKEN, Refusal.MALFORMED_TOKEN, Refusal.TOKEN_TOO_LARGE,
            Refusal.FORBIDDEN_HEADER, Refusal.UNKNOWN_KEY, Refusal.ALGORITHM_NOT_ALLOWED,
            Refusal.BAD_SIGNATURE, Refusal.TOKEN_EXPIRED, Refusal.NOT_YET_VALID,
            Refusal.AUDIENCE_MISMATCH, Refusal.ISSUER_MISMATCH, Refusal.MISSING_CLAIM,
        )
    },
    Refusal.INVALID_CLAIMS: "Invalid auth token",
    Refusal.INVALID_SCOPE: "Invalid token scope",
    Refusal.DPOP_PROOF_REQUIRED: (
        "This token is bound to a key: send it as 'Authorization: DPoP <token>' with a "
        "DPoP proof signed by that key"
    ),
    Refusal.TOKEN_NOT_BOUND: (
        "This token is not bound to a key: send it as 'Authorization: Bearer <token>'"
    ),
    Refusal.DAG_REQUIRES_DPOP: (
        "This DAG's tasks run on key-bound tokens only: start it with a DPoP proof"
    ),
    Refusal.MISSING_DPOP_PROOF: "A DPoP-bound token needs exactly one DPoP proof header",
    Refusal.PROOF_REPLAYED: "DPoP proof was already used; sign a new one for each request",
    Refusal.TOKEN_TYPE_NOT_ALLOWED: (
        "Token type '{token_type}' not allowed for this endpoint. Allowed types: {allowed}"
    ),
    Refusal.SUBJECT_MISMATCH: "Token subject does not match task instance ID",
    Refusal.REVOKED: "Token has been revoked",
    Refusal.TI_ENDED: "Task instance has ended; its tokens are no longer accepted",
    Refusal.WORKLOAD_TOKEN_REUSED: (
        "This workload token has already started the task instance; "
        "queue the task instance again for a new one"
    ),
}
# The refusals of a bound token's DPoP proof (401 with WWW-Authenticate: DPoP).
PROOF_REFUSALS = frozenset({
    Refusal.MISSING_DPOP_PROOF, Refusal.MALFORMED_PROOF, Refusal.PROOF_TOO_LARGE,
    Refusal.PROOF_TYPE_INVALID, Refusal.PROOF_ALGORITHM_NOT_ALLOWED, Refusal.PROOF_KEY_INVALID,
    Refusal.BAD_PROOF_SIGNATURE, Refusal.PROOF_MISSING_CLAIM, Refusal.PROOF_METHOD_MISMATCH,
    Refusal.PROOF_URL_MISMATCH, Refusal.PROOF_EXPIRED, Refusal.PROOF_NOT_YET_VALID,
    Refusal.ACCESS_TOKEN_HASH_MISMATCH, Refusal.KEY_MISMATCH, Refusal.USE_DPOP_NONCE,
    Refusal.PROOF_REPLAYED,
})
# A proof refused by one of its checks is told that check's own message (tokens.dpop);
# this is the fallback.
_MESSAGES.update({r: "Invalid DPoP proof" for r in PROOF_REFUSALS if r not in _MESSAGES})
# A repeated /run is a conflict to the worker: told as a service conflict is.
_CLIENT_REASONS = {Refusal.WORKLOAD_TOKEN_REUSED: "token_reused"}
