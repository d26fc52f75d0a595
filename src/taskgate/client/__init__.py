"""taskgate's own Execution API client: ``Client`` (blocking) and ``AsyncClient``.

    from taskgate.client import Client

    with Client("http://127.0.0.1:8080/execution", token=workload_token) as api:
        context = api.run(ti_id, hostname="box", unixname="me", pid=os.getpid())
        api.heartbeat(ti_id, hostname="box", pid=os.getpid())
        api.finish(ti_id, "success")

Answers are the server's pydantic wire models; failures are typed (``errors``); a token
the server refreshes is picked up for every later call; idempotent calls are retried with
backoff (``RetryPolicy``). ``taskgate.client.in_process`` serves the real app without a
network, authentication included. docs/client.md has the details.
"""

from taskgate.client.asynchronous import AsyncClient
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

__all__ = [
    "DEFAULT_API_URL",
    "NO_RETRIES",
    "AccessDenied",
    "ApiError",
    "AsyncClient",
    "Client",
    "Conflict",
    "InvalidRequest",
    "NotFound",
    "RetryPolicy",
    "ServerUnavailable",
    "TokenRejected",
]
