"""What the sync and async clients are configured with, and its defaults."""

from __future__ import annotations

import os
from typing import Any

import httpx

import taskgate
from taskgate.wire.http import EXECUTION_PREFIX

API_URL_ENV = "TASKGATE_API_URL"
DEFAULT_API_URL = f"http://127.0.0.1:8080{EXECUTION_PREFIX}"
# Connecting should be quick; an answer may wait for a busy database (the server gives up
# on a pool wait after 2 s and on a statement after 10 s by default).
DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = f"taskgate-client/{taskgate.__version__}"


def api_url(explicit: str | None = None) -> str:
    """The Execution API base URL: ``explicit``, else ``$TASKGATE_API_URL``, else the
    local default. It includes the ``/execution`` prefix."""
    return explicit or os.environ.get(API_URL_ENV) or DEFAULT_API_URL


def http_options(
    base_url: str | None, timeout: float | httpx.Timeout | None, transport: Any
) -> dict[str, Any]:
    return {
        "base_url": api_url(base_url),
        "timeout": DEFAULT_TIMEOUT if timeout is None else timeout,
        "transport": transport,
        "headers": {"User-Agent": USER_AGENT},
        "follow_redirects": False,  # a redirect must not carry the bearer token elsewhere
    }
