"""Path parameters the routers share."""

from typing import Any

from fastapi import Path

from taskgate.wire.runtime_data import PRINTABLE


def path_identifier(max_length: int = 250) -> Any:
    """A key or id in a URL path: printable text, 1 to ``max_length`` characters."""
    return Path(min_length=1, max_length=max_length, pattern=PRINTABLE)
