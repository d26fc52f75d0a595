"""Which database errors are faults (503 with a reason, retried) and which are bugs
(500); and the memory of the last fault that /execution/health reads."""

from __future__ import annotations

import sqlite3
import time

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from taskgate.db.availability import Fault, FaultMemory, fault_of


class DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def sqlite_error(code: int) -> sqlite3.OperationalError:
    error = sqlite3.OperationalError("sqlite says no")
    error.sqlite_errorcode = code
    return error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OperationalError("SELECT 1", {}, DriverError(None)), Fault.UNAVAILABLE),
        (PoolTimeout(), Fault.TIMEOUT),
        (ConnectionRefusedError(), Fault.UNAVAILABLE),
        (TimeoutError(), Fault.TIMEOUT),
        # Refused while connecting: no statement yet ("not currently accepting connections").
        (DBAPIError(None, None, DriverError("55000")), Fault.UNAVAILABLE),
        (DBAPIError("UPDATE t", {}, DriverError("57P01")), Fault.UNAVAILABLE),  # admin shutdown
        (DBAPIError("UPDATE t", {}, DriverError("57P03")), Fault.UNAVAILABLE),  # starting up
        (DBAPIError("UPDATE t", {}, DriverError("53300")), Fault.UNAVAILABLE),  # too many connections
        (DBAPIError("UPDATE t", {}, DriverError("08006")), Fault.UNAVAILABLE),  # connection failure
        (DBAPIError("UPDATE t", {}, DriverError("57014")), Fault.TIMEOUT),  # statement_timeout
        (DBAPIError("UPDATE t", {}, DriverError("55P03")), Fault.TIMEOUT),  # lock_timeout
        (DBAPIError("UPDATE t", {}, DriverError("25006")), Fault.READ_ONLY),  # a standby
        (DBAPIError("UPDATE t", {}, DriverError("53100")), Fault.FULL),  # disk full
        (OperationalError("UPDATE t", {}, sqlite_error(sqlite3.SQLITE_BUSY)), Fault.TIMEOUT),
        (OperationalError("UPDATE t", {}, sqlite_error(sqlite3.SQLITE_READONLY)), Fault.READ_ONLY),
        (OperationalError("UPDATE t", {}, sqlite_error(1032)), Fault.READ_ONLY),  # file moved
        (OperationalError("UPDATE t", {}, sqlite_error(sqlite3.SQLITE_FULL)), Fault.FULL),
        (OperationalError("UPDATE t", {}, sqlite_error(778)), Fault.UNAVAILABLE),  # write I/O error
        (ProgrammingError("SELECT nope", {}, DriverError("42P01")), None),  # our bug
        (DBAPIError("UPDATE t", {}, DriverError(None)), None),
        (ValueError("not a database error"), None),
    ],
)
def test_fault_of(error: BaseException, expected: Fault | None) -> None:
    assert fault_of(error) is expected


def test_an_operator_fault_asks_for_a_longer_wait() -> None:
    assert Fault.UNAVAILABLE.retry_after == Fault.TIMEOUT.retry_after == 1
    assert Fault.READ_ONLY.retry_after == Fault.FULL.retry_after == 5


def test_fault_memory_forgets_after_the_window() -> None:
    memory = FaultMemory()
    assert memory.recent(1.0) is None
    memory.note(Fault.FULL)
    assert memory.recent(1.0) is Fault.FULL
    time.sleep(0.06)
    assert memory.recent(0.05) is None
    assert memory.recent(1.0) is Fault.FULL
