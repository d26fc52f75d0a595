"""What the client raises: one type per kind of answer a caller handles differently.

Every error carries the HTTP ``status`` (None when no answer came), the server's
``reason`` and ``message``, the raw ``detail`` and the request's ``correlation_id`` (the
id the server logged the request under). ``reason`` is the stable code of the server's
``Taskgate-Reason`` header (``token_expired``, ``subject_mismatch``, ``other_team``, ...)
when it sent one, else the ``reason`` of the body; with no answer, the transport error's
name (``ConnectError``, ``ReadTimeout``).
"""

from __future__ import annotations

from typing import Any

import httpx

from taskgate.wire.http import REASON_HEADER


class ApiError(Exception):
    """An Execution API call failed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        reason: str = "",
        detail: Any = None,
        correlation_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.detail = detail
        self.correlation_id = correlation_id

    def __str__(self) -> str:
        status = f"{self.status} " if self.status is not None else ""
        return f"{status}{self.message}"


class TokenRejected(ApiError):
    """The security layers refused the token (401/403). ``reason`` says why
    (``missing_token``, ``token_expired``, ``bad_signature``, ``revoked``, ``ti_ended``,
    ...); ``message`` is the server's text (``Invalid auth token``, ``Token has been
    revoked``, ...)."""


class AccessDenied(ApiError):
    """The access policy refused this TI the data it asked for (403 ``access_denied``;
    ``reason`` names the rule: ``other_team``, ``other_dag``, ...)."""


class NotFound(ApiError):
    """404: the TI, variable, connection or XCom does not exist."""


class Conflict(ApiError):
    """409: the request does not fit the current state (``invalid_state``,
    ``running_elsewhere``, ``not_running``, ``workload_token_reused``, ``conflict``)."""


class InvalidRequest(ApiError):
    """Any other 4xx: the request itself is wrong (bad input, too large, ...)."""


class ServerUnavailable(ApiError):
    """No usable answer: a 5xx, or no answer at all (connection refused or lost, timeout),
    after the retries the call was allowed."""


def error_from_response(response: httpx.Response, correlation_id: str) -> ApiError:
    """The typed error for an answer with status >= 400."""
    status = response.status_code
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        detail = response.text or None
    reason, message = _reason_and_message(detail, response.reason_phrase)
    reason = response.headers.get(REASON_HEADER) or reason
    kind: type[ApiError]
    if status >= 500:
        kind = ServerUnavailable
    elif status == 401 or (status == 403 and isinstance(detail, str)):
        kind = TokenRejected  # the security layers answer with a plain string detail
    elif status == 403:
        kind = AccessDenied
    elif status == 404:
        kind = NotFound
    elif status == 409:
        kind = Conflict
    else:
        kind = InvalidRequest
    return kind(message, status=status, reason=reason, detail=detail, correlation_id=correlation_id)


def no_answer(exc: httpx.TransportError, url: str, correlation_id: str) -> ServerUnavailable:
    kind = type(exc).__name__
    return ServerUnavailable(
        f"no answer from {url}: {kind}{f' ({exc})' if str(exc) else ''}",
        reason=kind,
        correlation_id=correlation_id,
    )


def _reason_and_message(detail: Any, fallback: str) -> tuple[str, str]:
    if isinstance(detail, str):
        return detail, detail
    if isinstance(detail, dict):
        reason = str(detail.get("reason", ""))
        return reason, str(detail.get("message", reason or fallback))
    if isinstance(detail, list):  # 422: FastAPI's list of validation errors
        messages = [f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in detail]
        return "invalid_input", "; ".join(messages) or fallback
    return "", fallback
