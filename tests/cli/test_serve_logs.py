"""What `taskgate serve` writes, as a log shipper reads it: every line in the configured
format (uvicorn's start-up, access and shutdown lines included), one ``http.request``
event per request with its route template, status, correlation id and refusal reason,
and never a token."""

from __future__ import annotations

import json
import re
import uuid

import httpx
import pytest

from taskgate.settings import Settings
from tests.support.api import BEAT_BODY, bearer
from tests.support.processes import free_port, run_cli, serve_env, server_output, start_serve

pytestmark = pytest.mark.integration

HEARTBEAT = "/execution/task-instances/{task_instance_id}/heartbeat"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _env(data_dir, log_format: str) -> dict[str, str]:
    # The log format does not depend on the database: the embedded SQLite only.
    return {**serve_env(Settings(data_dir=data_dir)), "TASKGATE_LOG_FORMAT": log_format}


def _stopped_output(env: dict[str, str], *requests, extra: tuple[str, ...] = ()) -> str:
    """Start `taskgate serve`, send ``requests`` (functions of the base URL), stop it
    gracefully; everything it wrote to stdout and stderr."""
    port = free_port()
    server = start_serve(env, port, *extra)
    try:
        for request in requests:
            request(f"http://127.0.0.1:{port}")
    finally:
        server.terminate()
        code = server.wait(timeout=15)
    output = server_output(server)
    assert code == 0, output
    return output


def test_json_every_line_is_an_object_and_requests_are_events(data_dir):
    env = _env(data_dir, "json")
    ti = uuid.uuid4()
    token = run_cli(env, "tokens", "mint", "--ti", str(ti)).stdout.strip()
    beat = f"/execution/task-instances/{ti}/heartbeat"
    answers = {}

    def requests(url: str) -> None:
        answers["health"] = httpx.get(f"{url}/execution/health", headers={"correlation-id": "cid-7"})
        answers["refused"] = httpx.put(f"{url}{beat}", json=BEAT_BODY)
        # A token in the header and one in the query string: neither may be logged.
        answers["signed"] = httpx.put(f"{url}{beat}?token={token}", json=BEAT_BODY,
                                      headers=bearer(token))
        answers["control"] = httpx.get(f"{url}/control/v1/dags")

    output = _stopped_output(env, requests)

    lines = [line for line in output.splitlines() if line.strip()]
    events = []
    for line in lines:
        event = json.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(event, dict), line
        events.append(event)
    loggers = {e.get("logger") for e in events}
    assert {"taskgate.serve", "uvicorn.error", "taskgate.access"} <= loggers, output
    messages = [e["event"] for e in events]
    assert any(m.startswith("Started server process") for m in messages), output
    assert any(m.startswith("Finished server process") for m in messages), output
    assert token not in output
    assert token.split(".")[2] not in output  # not even the signature
    assert "token=" not in output  # no query strings

    access = [e for e in events if e["event"] == "http.request"]
    health = [e for e in access if e["route"] == "/execution/health" and "correlation_id" in e]
    assert len(health) == 1, access
    assert health[0]["correlation_id"] == "cid-7"
    assert (health[0]["method"], health[0]["status"]) == ("GET", 200)
    assert health[0]["duration_ms"] >= 0 and health[0]["client"].startswith("127.0.0.1:")
    assert "reason" not in health[0]

    beats = [e for e in access if e["route"] == HEARTBEAT]
    assert [(e["method"], e["path"], e["status"]) for e in beats] == [
        ("PUT", beat, answers["refused"].status_code),
        ("PUT", beat, answers["signed"].status_code),
    ]
    assert (beats[0]["status"], beats[0]["reason"]) == (401, "missing_token")
    assert beats[1]["reason"] == answers["signed"].headers["Taskgate-Reason"]

    # The control API answers with the reason header only: the event has it all the same.
    (control,) = [e for e in access if e["path"] == "/control/v1/dags"]
    assert (control["status"], control["reason"]) == (401, "missing_key")


def test_console_renders_the_access_event_with_structlog(data_dir):
    output = _stopped_output(
        _env(data_dir, "console"),
        lambda url: httpx.get(f"{url}/execution/health", headers={"correlation-id": "cid-8"}),
    )
    plain = ANSI.sub("", output)
    assert "INFO:" not in plain  # uvicorn's own formatter prefix
    (line,) = [ln for ln in plain.splitlines() if "correlation_id=cid-8" in ln]
    assert re.match(r"^\d{4}-\d\d-\d\dT[\d:.]+Z \[info\s*\] http\.request\s", line), line
    assert "route=/execution/health" in line and "status=200" in line
    assert re.search(r"\[info\s*\] Started server process \[\d+\]", plain), plain


def test_no_access_log_means_no_request_events(data_dir):
    output = _stopped_output(
        _env(data_dir, "json"),
        lambda url: httpx.get(f"{url}/execution/health"),
        extra=("--no-access-log",),
    )
    events = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert not [e for e in events if e["event"] == "http.request"], output
    assert any(e["event"].startswith("Started server process") for e in events)
