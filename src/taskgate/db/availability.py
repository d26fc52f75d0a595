"""Whether a database error means "not available now" (answered 503, retried by the
worker) rather than a bug or bad data.

Unavailable: the connection was lost, refused or timed out; the pool had no connection
in time; or the server refused to serve, at connect or mid-statement. PostgreSQL says so
with its SQLSTATE: class 08 (connection exception), 53 (insufficient resources, such as
too many connections) and 57P (operator intervention: shutting down, starting up, a
terminated backend); and any error raised while connecting (no statement yet), such as
"database is not currently accepting connections".
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# Raised as such: SQLAlchemy's wrappers, and the driver's own connect errors (asyncpg
# raises OSError / TimeoutError on connect).
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    OSError,
    TimeoutError,
)
_UNAVAILABLE_SQLSTATES = ("08", "53", "57P")


def unavailable(exc: BaseException) -> bool:
    if isinstance(exc, UNAVAILABLE):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.statement is None:
        return True  # refused while connecting
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_UNAVAILABLE_SQLSTATES)
