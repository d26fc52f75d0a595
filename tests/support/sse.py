"""Reading a Server-Sent Events stream in tests: frames as they arrive, with when."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Frame:
    id: int
    event: str
    data: dict[str, Any]
    received: float  # time.monotonic() when its last line arrived


def frames(response: httpx.Response) -> Iterator[Frame]:
    """The events of a streaming ``response``; comments and ``retry:`` are skipped."""
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line:
            name, _, value = line.partition(":")
            if name:  # an empty name is a comment
                fields[name] = value.removeprefix(" ")
            continue
        if "data" in fields:
            yield Frame(int(fields["id"]), fields.get("event", "message"),
                        json.loads(fields["data"]), time.monotonic())
        fields = {}
