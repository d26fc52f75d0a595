"""The ``Airflow-API-Version`` header of the Execution API.

Airflow versions its Execution API by date; the Task SDK sends the date it speaks in every
request. taskgate serves one version, ``SERVED_VERSION`` (the one Task SDK 1.3.x sends):

- no header, or a date on or after the served one -> served (a newer client falls back to
  the newest version the server has, as with Airflow's own server);
- a date before it -> 400 ``unsupported_api_version``: older clients expect answer shapes
  taskgate does not produce, and failing at the first call is clearer than later;
- anything that is not a ``YYYY-MM-DD`` date -> 400 ``invalid_api_version``.

Every answer under ``/execution`` names the served version in the same header.
"""

from __future__ import annotations

import json
import re
from datetime import date

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate.wire.http import API_VERSION_HEADER, EXECUTION_PREFIX, REASON_HEADER, asgi_name

HEADER = asgi_name(API_VERSION_HEADER)
SERVED_VERSION = "2026-06-30"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def version_problem(value: str | None) -> dict[str, str] | None:
    """Why a requested version cannot be served, or None when it can."""
    if value is None:
        return None
    try:
        requested = date.fromisoformat(value) if _DATE.fullmatch(value) else None
    except ValueError:
        requested = None
    if requested is None:
        return {
            "reason": "invalid_api_version",
            "message": f"Airflow-API-Version must be a date (YYYY-MM-DD); "
            f"this server serves {SERVED_VERSION}",
        }
    if requested < date.fromisoformat(SERVED_VERSION):
        return {
            "reason": "unsupported_api_version",
            "message": f"Airflow-API-Version {value} is older than the version this server "
            f"serves ({SERVED_VERSION}, Airflow Task SDK 1.3)",
        }
    return None


class ApiVersionMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == EXECUTION_PREFIX or path.startswith(EXECUTION_PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        values = [v for k, v in scope["headers"] if k == HEADER]
        raw = values[-1].decode("latin-1").strip() if values else None
        served = (HEADER, SERVED_VERSION.encode())
        problem = version_problem(raw)
        if problem is not None:
            body = json.dumps({"detail": problem}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (asgi_name(REASON_HEADER), problem["reason"].encode()),
                        served,
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def send_with_version(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), served]
            await send(message)

        await self.app(scope, receive, send_with_version)
