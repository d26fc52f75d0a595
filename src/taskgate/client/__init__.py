"""taskgate's own Execution API client: ``Client`` (blocking) and ``AsyncClient``.

    from taskgate.client import Client

    with Client("http://127.0.0.1:8080/execution", token=workload_token) as api:
        context = api.run(ti_id, hostname="box", unixname="me", pid=os.getpid())
        api.heartbeat(ti_id, hostname="box", pid=os.getpid())
        api.finish(ti_id, "success")

Answers are the server's pydantic wire models; failures are typed (``errors``); a token
the server refreshes is picked up for every later call; every request carries a DPoP
proof of a key generated in memory (``DPoPKey``), so ``run`` gets an execution token bound
to it; idempotent calls are retried with backoff (``RetryPolicy``).
``taskgate.client.in_process`` serves the real app without a network, authentication
included. docs/client.md has the details.

The names below are loaded on first use: ``taskgate.control`` (the control API's client)
and the CLI import ``taskgate.client.errors`` and ``exchange`` without the wire models
(pydantic) that ``Client`` needs.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskgate.client.asynchronous import AsyncClient
    from taskgate.client.dpop import DPoPKey
    from taskgate.client.errors import (
        AccessDenied,
        ApiError,
        Conflict,
        InvalidRequest,
        NotFound,
        ServerUnavailable,
        TokenRejected,
    )
    from taskgate.client.options import DEFAULT_API_URL
    from taskgate.client.retry import NO_RETRIES, RetryPolicy
    from taskgate.client.sync import Client

_HOMES = {
    "AsyncClient": "asynchronous",
    "DPoPKey": "dpop",
    "AccessDenied": "errors",
    "ApiError": "errors",
    "Conflict": "errors",
    "InvalidRequest": "errors",
    "NotFound": "errors",
    "ServerUnavailable": "errors",
    "TokenRejected": "errors",
    "DEFAULT_API_URL": "options",
    "NO_RETRIES": "retry",
    "RetryPolicy": "retry",
    "Client": "sync",
}

__all__ = [
    "DEFAULT_API_URL",
    "NO_RETRIES",
    "AccessDenied",
    "ApiError",
    "AsyncClient",
    "Client",
    "Conflict",
    "DPoPKey",
    "InvalidRequest",
    "NotFound",
    "RetryPolicy",
    "ServerUnavailable",
    "TokenRejected",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOMES))
