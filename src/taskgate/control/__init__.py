"""The Python client of taskgate's control API (``/control/v1``): what an orchestrator
does with an operator key.

    from taskgate.control import ControlClient

    with ControlClient("https://taskgate.internal/", key) as control:
        run = control.create_run("etl", "2026-01-01", ["extract", "load"])
        workload = control.queue(run.task_instances[0].id).raw  # hand it to a worker
        for event in control.events(dag_id="etl"):
            print(event.id, event.kind, event.data.get("to"))

``AsyncControlClient`` has the same methods, awaited (``events`` is an async iterator).
Answers are frozen dataclasses (``taskgate.control.models``) that keep the JSON as
``raw``; failures are ``taskgate.client.errors`` (``AccessDenied`` for a role or team
refused, ``TokenRejected`` for a missing or unknown key, ``NotFound``, ``Conflict``,
``InvalidRequest``, ``ServerUnavailable``). It needs httpx only: no server code, no
pydantic. docs/control.md has the details.
"""

from taskgate.client.errors import (
    AccessDenied,
    ApiError,
    Conflict,
    InvalidRequest,
    NotFound,
    ServerUnavailable,
    TokenRejected,
)
from taskgate.client.retry import NO_RETRIES, RetryPolicy
from taskgate.control.client import AsyncControlClient, ControlClient, control_url
from taskgate.control.models import (
    Connection,
    CreatedRun,
    Dag,
    Event,
    OperatorInfo,
    Queued,
    RunTask,
    TaskInstance,
    TokensRevoked,
    Variable,
    XCom,
)

__all__ = [
    "NO_RETRIES",
    "AccessDenied",
    "ApiError",
    "AsyncControlClient",
    "Conflict",
    "Connection",
    "ControlClient",
    "CreatedRun",
    "Dag",
    "Event",
    "InvalidRequest",
    "NotFound",
    "OperatorInfo",
    "Queued",
    "RetryPolicy",
    "RunTask",
    "ServerUnavailable",
    "TaskInstance",
    "TokenRejected",
    "TokensRevoked",
    "Variable",
    "XCom",
    "control_url",
]
