"""Admission control: past the bound, 503 overloaded at once; liveness calls (heartbeat,
state, /run) have as many slots again on top."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from taskgate.api.middleware.admission import AdmissionMiddleware, is_liveness

TI = "/execution/task-instances/0196e5f2-0000-7000-8000-000000000000"


class GatedApp:
    """Holds every request until ``release`` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.mark.parametrize(
    ("method", "path", "liveness"),
    [
        ("PUT", f"{TI}/heartbeat", True),
        ("PATCH", f"{TI}/state", True),
        ("PATCH", f"{TI}/run", True),
        ("GET", f"{TI}/heartbeat", False),
        ("GET", "/execution/variables/heartbeat", False),
        ("PUT", "/execution/variables/x/heartbeat", False),
        ("GET", "/execution/health", False),
    ],
)
def test_liveness_calls(method: str, path: str, liveness: bool) -> None:
    assert is_liveness(method, path) is liveness


async def test_reads_past_the_bound_are_shed_and_liveness_goes_on() -> None:
    app, shed = GatedApp(), []
    admission = AdmissionMiddleware(app, limit=2, on_shed=shed.append)
    transport = httpx.ASGITransport(app=admission)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        reads = [asyncio.create_task(http.get("/execution/variables/v")) for _ in range(2)]
        while app.entered < 2:
            await asyncio.sleep(0.01)

        refused = await http.get("/execution/variables/v")
        assert refused.status_code == 503
        assert refused.json()["detail"]["reason"] == "overloaded"
        assert refused.headers["Retry-After"] == "1"
        assert refused.headers["Taskgate-Reason"] == "overloaded"

        beats = [asyncio.create_task(http.put(f"{TI}/heartbeat")) for _ in range(2)]
        while app.entered < 4:
            await asyncio.sleep(0.01)
        assert admission.in_flight == 4
        beyond = await http.put(f"{TI}/heartbeat")  # twice the bound: shed too
        assert beyond.status_code == 503
        # Outside the Execution API (metrics, JWKS) nothing is counted or shed.
        scrape = asyncio.create_task(http.get("/metrics"))
        while app.entered < 5:
            await asyncio.sleep(0.01)
        assert admission.in_flight == 4

        app.release.set()
        answers = await asyncio.gather(*reads, *beats, scrape)
    assert [a.status_code for a in answers] == [204] * 5
    assert shed == [False, True]
    assert admission.in_flight == 0
