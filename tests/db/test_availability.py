"""Which database errors mean "unavailable now" (503, retried) and which are bugs (500)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from taskgate.db.availability import unavailable


class DriverError(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (OperationalError("SELECT 1", {}, DriverError(None)), True),
        (PoolTimeout(), True),
        (ConnectionRefusedError(), True),
        (TimeoutError(), True),
        # Refused while connecting: no statement yet ("not currently accepting connections").
        (DBAPIError(None, None, DriverError("55000")), True),
        (DBAPIError("UPDATE t", {}, DriverError("57P01")), True),  # admin shutdown
        (DBAPIError("UPDATE t", {}, DriverError("57P03")), True),  # cannot connect now
        (DBAPIError("UPDATE t", {}, DriverError("53300")), True),  # too many connections
        (DBAPIError("UPDATE t", {}, DriverError("08006")), True),  # connection failure
        (ProgrammingError("SELECT nope", {}, DriverError("42P01")), False),  # our bug
        (DBAPIError("UPDATE t", {}, DriverError(None)), False),
        (ValueError("not a database error"), False),
    ],
)
def test_unavailable(error: BaseException, expected: bool) -> None:
    assert unavailable(error) is expected
