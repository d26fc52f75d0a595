"""Which database errors mean "not available now" (answered 503, retried by the worker)
rather than a bug or bad data, and which kind of fault each one is.

The kinds (``Fault``), each a reason code on the wire:

- ``database_unavailable``: the connection was lost or refused, or the server refused to
  serve. PostgreSQL says so with its SQLSTATE: class 08 (connection exception), 53
  (insufficient resources, such as too many connections) and 57P (operator intervention:
  shutting down, starting up, a terminated backend); and any error raised while
  connecting (no statement yet), such as "database is not currently accepting
  connections". SQLite: an I/O error, a file it cannot open.
- ``database_timeout``: the database did not answer in time. The request's deadline
  passed (``api.middleware.deadline``), no pooled connection came free, connecting timed
  out, PostgreSQL cancelled the statement (``statement_timeout``, 57014; a lock wait,
  55P03), or SQLite's file stayed locked by another process past the busy timeout.
- ``database_read_only``: writes are refused: PostgreSQL is a standby (a failover went
  the wrong way, 25006), or SQLite's file cannot be written.
- ``database_full``: the disk is full (PostgreSQL 53100, SQLite ``SQLITE_FULL``).

Anything else a driver raises is a bug of ours and answered 500.

``FaultMemory`` keeps the last fault requests met, so that ``/execution/health`` can say
which fault it is even when its own trivial query still succeeds (a full disk, a
read-only file, a lock: reads go on working).
"""

from __future__ import annotations

import sqlite3
import time
from enum import StrEnum

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout


class Fault(StrEnum):
    UNAVAILABLE = "database_unavailable"
    TIMEOUT = "database_timeout"
    READ_ONLY = "database_read_only"
    FULL = "database_full"

    @property
    def retry_after(self) -> int:
        """Seconds a worker should wait before trying again: an operator has to act on
        a read-only or full database, the others usually pass by themselves."""
        return 5 if self in (Fault.READ_ONLY, Fault.FULL) else 1

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES = {
    Fault.UNAVAILABLE: "The database is not reachable",
    Fault.TIMEOUT: "The database did not answer in time",
    Fault.READ_ONLY: "The database refuses writes (read-only)",
    Fault.FULL: "The database has no space left",
}

_SQLSTATES = (  # most specific first
    ("57014", Fault.TIMEOUT),  # statement_timeout (or a cancel request)
    ("55P03", Fault.TIMEOUT),  # lock_timeout
    ("25006", Fault.READ_ONLY),  # read-only transaction: a standby
    ("53100", Fault.FULL),  # disk full
    ("08", Fault.UNAVAILABLE),
    ("53", Fault.UNAVAILABLE),
    ("57P", Fault.UNAVAILABLE),
)
_SQLITE_CODES = {
    sqlite3.SQLITE_BUSY: Fault.TIMEOUT,
    sqlite3.SQLITE_LOCKED: Fault.TIMEOUT,
    sqlite3.SQLITE_READONLY: Fault.READ_ONLY,
    sqlite3.SQLITE_FULL: Fault.FULL,
    sqlite3.SQLITE_IOERR: Fault.UNAVAILABLE,
    sqlite3.SQLITE_CANTOPEN: Fault.UNAVAILABLE,
}

# Raised as such: SQLAlchemy's wrappers, and the driver's own connect errors (asyncpg
# raises OSError / TimeoutError on connect).
UNAVAILABLE: tuple[type[Exception], ...] = (
    OperationalError,
    InterfaceError,
    PoolTimeout,
    OSError,
    TimeoutError,
)


def fault_of(exc: BaseException) -> Fault | None:
    """The kind of database fault ``exc`` is, or None when it is not one."""
    if isinstance(exc, PoolTimeout | TimeoutError):
        return Fault.TIMEOUT
    original = exc.orig if isinstance(exc, DBAPIError) else exc
    sqlstate = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
    if isinstance(sqlstate, str):
        for prefix, fault in _SQLSTATES:
            if sqlstate.startswith(prefix):
                return fault
    sqlite_code = getattr(original, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int) and (sqlite_code & 0xFF) in _SQLITE_CODES:
        return _SQLITE_CODES[sqlite_code & 0xFF]
    if isinstance(exc, UNAVAILABLE):
        return Fault.UNAVAILABLE
    if isinstance(exc, DBAPIError) and exc.statement is None:
        return Fault.UNAVAILABLE  # refused while connecting
    return None


class FaultMemory:
    """The last database fault that requests of this process met, and when."""

    def __init__(self) -> None:
        self._last: tuple[Fault, float] | None = None

    def note(self, fault: Fault) -> None:
        self._last = (fault, time.monotonic())

    def recent(self, within: float) -> Fault | None:
        """The last fault, if it was met less than ``within`` seconds ago."""
        if self._last is None or time.monotonic() - self._last[1] >= within:
            return None
        return self._last[0]
