"""Map domain errors to HTTP: ``{"detail": {"reason": ..., "message": ...}}``, and the
reason code in the ``Taskgate-Reason`` header of every such answer (the security layers
set it on their own refusals, ``security.request_auth``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError

from taskgate.db.availability import UNAVAILABLE, Fault, fault_of
from taskgate.security import refuse
from taskgate.services.errors import (
    AccessDenied,
    Conflict,
    Gone,
    InvalidInput,
    InvalidRequest,
    NotFound,
    ServiceError,
    TokenRefused,
    Unavailable,
)
from taskgate.services.secrets import SecretKeyError
from taskgate.wire.http import REASON_HEADER

STATUS = {
    NotFound: 404,
    Conflict: 409,
    Gone: 410,
    AccessDenied: 403,
    InvalidRequest: 400,
    InvalidInput: 422,
    Unavailable: 503,
}

log = structlog.get_logger("taskgate.api")


def _answer(
    status: int, reason: str, message: str, *, headers: dict[str, str] | None = None
) -> JSONResponse:
    """``{"detail": {"reason", "message"}}``, the reason also in the reason header."""
    return JSONResponse(
        {"detail": {"reason": reason, "message": message}},
        status_code=status,
        headers={REASON_HEADER: reason, **(headers or {})},
    )


async def _service_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status = next(code for cls, code in STATUS.items() if isinstance(exc, cls))
    if status == 403:
        log.warning("access denied", reason=exc.code, path=request.url.path)
    return JSONResponse(
        {"detail": exc.detail}, status_code=status, headers={REASON_HEADER: exc.code}
    )


async def _http_exception(request: Request, exc: Exception) -> Response:
    # A refusal raised as an HTTPException with a {"reason", ...} detail (the control
    # API's operator checks) gets the reason header too.
    assert isinstance(exc, HTTPException)
    if isinstance(exc.detail, dict) and "reason" in exc.detail:
        headers = {REASON_HEADER: str(exc.detail["reason"]), **(exc.headers or {})}
        exc = HTTPException(exc.status_code, exc.detail, headers=headers)
    return await http_exception_handler(request, exc)


async def _token_refused(request: Request, exc: Exception) -> Response:
    # A service found the token refused in its own write: answered, logged and counted
    # exactly as when the security layers refuse it before the handler.
    assert isinstance(exc, TokenRefused)
    return await http_exception_handler(request, refuse(request, exc.refusal))


def database_fault_answer(fault: Fault) -> JSONResponse:
    return _answer(
        503, fault.value, fault.message, headers={"Retry-After": str(fault.retry_after)}
    )


FaultReporter = Callable[[Fault, str, str], None]
"""Told of every database fault answered: the fault, the path, what was raised."""


def _database_error(report: FaultReporter) -> Callable[[Request, Exception], Awaitable[Response]]:
    # A database fault (lost, refused, timed out, read-only, full: db.availability) is
    # 503 with its reason; any other driver error is a bug of ours, raised on to the 500
    # handler.
    async def answer(request: Request, exc: Exception) -> Response:
        fault = fault_of(exc)
        if fault is None:
            raise exc
        report(fault, request.url.path, type(exc).__name__)
        return database_fault_answer(fault)

    return answer


async def _integrity_error(request: Request, exc: Exception) -> JSONResponse:
    # A concurrent request wrote the same row first; the loser is told, nothing is half-written.
    return _answer(409, "conflict", "A concurrent request changed the same data")


async def _secrets_unreadable(request: Request, exc: Exception) -> JSONResponse:
    # The server's Fernet keys do not fit the stored data: an operator problem, said plainly
    # (and without any stored value).
    log.error("secrets unreadable", path=request.url.path)
    return _answer(500, "secrets_unreadable", "Stored secrets cannot be decrypted")


async def _unstorable_value(request: Request, exc: Exception) -> JSONResponse:
    # The database refused a value the validators let through (a NUL character, NaN in
    # JSON for PostgreSQL, an unpaired surrogate): bad input, nothing was written.
    return _answer(422, "invalid_value", "A value cannot be stored (invalid text or number)")


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's shape, minus the offending input: it may be a secret (a variable value) and
    # need not even be JSON (NaN). Type, location and message say what to fix.
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()
    ]
    return JSONResponse(
        {"detail": errors}, status_code=422, headers={REASON_HEADER: "invalid_input"}
    )


def install(app: FastAPI, report_fault: FaultReporter) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(TokenRefused, _token_refused)
    for kind in (DBAPIError, *UNAVAILABLE):
        app.add_exception_handler(kind, _database_error(report_fault))
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(SecretKeyError, _secrets_unreadable)
    app.add_exception_handler(DataError, _unstorable_value)
    app.add_exception_handler(UnicodeError, _unstorable_value)
