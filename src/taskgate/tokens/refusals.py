"""Why a task token is refused: one ``Refusal`` per reason, everywhere a token is refused.

The bearer step, ``require_auth``, the token gate, the heartbeat's write, the re-issue
middleware and the lifecycle service all speak of a refusal as a ``Refusal``; its
``code`` is the ``reason`` of the audit event and of the
``taskgate_auth_denials_total`` metric, and ``message`` what the client is told. Which
HTTP status each one answers is the security layer's business
(``taskgate.security.request_auth``).
"""

from __future__ import annotations

from enum import Enum
from typing import Any


class Refusal(Enum):
    MISSING_TOKEN = ("missing_token", "Missing auth token")
    MULTIPLE_AUTHORIZATION_HEADERS = (
        "multiple_authorization_headers",
        "Multiple Authorization headers",
    )
    INVALID_TOKEN = ("invalid_token", "Invalid auth token")
    INVALID_CLAIMS = ("invalid_claims", "Invalid auth token")
    INVALID_SCOPE = ("invalid_scope", "Invalid token scope")
    TOKEN_TYPE_NOT_ALLOWED = (
        "token_type_not_allowed",
        "Token type '{token_type}' not allowed for this endpoint. Allowed types: {allowed}",
    )
    SUBJECT_MISMATCH = ("subject_mismatch", "Token subject does not match task instance ID")
    REVOKED = ("revoked", "Token has been revoked")
    TI_ENDED = ("ti_ended", "Task instance has ended; its tokens are no longer accepted")
    # The client sees {"reason": "token_reused", "message": ...}: what a service conflict
    # looks like, since a repeated /run is one to the worker.
    WORKLOAD_TOKEN_REUSED = (
        "workload_token_reused",
        "This workload token has already started the task instance; "
        "queue the task instance again for a new one",
        "token_reused",
    )

    def __init__(self, code: str, message: str, client_reason: str | None = None) -> None:
        self.code = code
        self.message = message
        self.client_reason = client_reason

    def detail(self, message: str | None = None, **fields: Any) -> str | dict[str, str]:
        """What the client is told: the message (``message`` instead, for a validator's
        own wording; ``fields`` fill its placeholders), as a plain string, or as
        ``{"reason", "message"}`` for a refusal that reads as a conflict."""
        text = message if message is not None else self.message.format(**fields)
        if self.client_reason is None:
            return text
        return {"reason": self.client_reason, "message": text}
