"""`taskgate serve` with TASKGATE_OTEL_ENABLED: log events carry the caller's trace id;
without the OpenTelemetry packages, enabling it is a one-line start-up error."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys

import httpx
import pytest

from tests.support.api import BEAT_BODY, bearer
from tests.support.processes import free_port, serve_env, server_output, start_serve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]


def test_log_events_carry_the_callers_trace_id(settings):
    pytest.importorskip(
        "opentelemetry.instrumentation.asgi",
        reason="the otel extra is not installed (pip install -e '.[otel]')",
    )
    env = {**serve_env(settings), "TASKGATE_OTEL_ENABLED": "1"}
    port = free_port()
    server = start_serve(env, port)
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    try:
        refused = httpx.put(
            f"http://127.0.0.1:{port}/execution/task-instances/{'0' * 32}/heartbeat",
            json=BEAT_BODY, headers={**bearer("not.a.token"), "traceparent": f"00-{trace_id}-{parent}-01"},
        )
        assert refused.status_code == 403
    finally:
        server.terminate()
        server.wait(15)
    output = server_output(server)
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    denied = [e for e in events if e.get("event") == "auth.denied"]
    assert len(denied) == 1, output
    assert denied[0]["trace_id"] == trace_id
    assert len(denied[0]["span_id"]) == 16 and denied[0]["span_id"] != parent  # the server's span


def test_enabled_without_the_packages_is_a_clear_startup_error(settings):
    # The packages made unimportable for this process, as if the extra were not installed.
    hide = "import sys; sys.modules['opentelemetry.instrumentation.asgi'] = None; "
    start = "from taskgate.cli.main import app; app()"
    env = {**serve_env(settings), "TASKGATE_OTEL_ENABLED": "true"}
    result = subprocess.run(
        [sys.executable, "-c", hide + start, "serve", "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert "TASKGATE_OTEL_ENABLED is set, but OpenTelemetry is not installed" in result.stderr
    assert "pip install 'taskgate[otel]'" in result.stderr
    assert "Traceback" not in result.stderr
