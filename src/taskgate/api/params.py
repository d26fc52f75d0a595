"""Path parameters the routers share."""

from typing import Annotated, Any

from fastapi import Path

from taskgate.wire.runtime_data import PRINTABLE

# Integers a database column holds on every backend (SQLite's and PostgreSQL's INTEGER).
MAX_INT = 2**31 - 1


def path_identifier(max_length: int = 250) -> Any:
    """A key or id in a URL path: printable text, 1 to ``max_length`` characters."""
    return Path(min_length=1, max_length=max_length, pattern=PRINTABLE)


Identifier = Annotated[str, path_identifier()]
"""A DAG, run or task id, a key or a name in a control API path."""
