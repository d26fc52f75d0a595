"""OpenTelemetry (the ``otel`` extra, in the ``test`` extra too): with tracing enabled,
each request is a server span in the caller's trace. Spans are read back from the SDK's
in-memory exporter."""

from __future__ import annotations

import secrets

import httpx
import pytest

pytest.importorskip(
    "opentelemetry.instrumentation.asgi",
    reason="the otel extra is not installed (pip install -e '.[otel]')",
)

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.settings import Settings
from tests.support.api import BEAT_BODY, bearer


@pytest.fixture
def settings(data_dir, database_url) -> Settings:
    return Settings(data_dir=data_dir, database_url=database_url, otel_enabled=True)


def recording_provider() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A tracer provider that keeps every finished span in memory, and its exporter."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def traceparent() -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return f"00-{trace_id}-{parent}-01", trace_id, parent


async def test_server_spans_continue_the_callers_trace(runtime, factory):
    provider, exporter = recording_provider()
    app = create_app(runtime, tracer_provider=provider)
    header, trace_id, parent = traceparent()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://taskgate") as http:
        ti, token = await factory.running_ti(http)
        beat = f"/execution/task-instances/{ti.id}/heartbeat"
        answered = await http.put(beat, json=BEAT_BODY, headers={**bearer(token), "traceparent": header})
        assert answered.status_code == 204
        untraced = await http.put(beat, json=BEAT_BODY, headers=bearer(token))
        assert untraced.status_code == 204

    spans = exporter.get_finished_spans()
    assert len(spans) == 3  # /run and two heartbeats: one server span each, nothing more
    continued = [s for s in spans if format(s.context.trace_id, "032x") == trace_id]
    assert len(continued) == 1
    span = continued[0]
    assert span.kind is SpanKind.SERVER
    assert format(span.parent.span_id, "016x") == parent and span.parent.is_remote
    assert format(span.context.span_id, "016x") != parent  # the server's own span
    route = "/execution/task-instances/{task_instance_id}/heartbeat"
    assert (span.name, span.attributes.get("http.route")) == (f"PUT {route}", route)
    assert all(str(ti.id) not in s.name for s in spans)
    # Without a traceparent a request starts its own trace.
    roots = [s for s in spans if s is not span]
    assert all(s.parent is None for s in roots)
    assert len({s.context.trace_id for s in spans}) == 3


async def test_tracing_off_by_default(data_dir, database_url):
    assert Settings(data_dir=data_dir, database_url=database_url).otel_enabled is False


@pytest.mark.parametrize("otel_enabled", [True, False])
async def test_only_taskgates_own_spans(runtime, factory, monkeypatch, otel_enabled):
    """FastAPI's native telemetry stays off: a process-wide tracer provider (as
    ``opentelemetry-instrument`` sets one up) gets one server span per request from
    taskgate with tracing on, and no spans at all with it off."""
    from opentelemetry import trace

    provider, exporter = recording_provider()
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    served = runtime
    if not otel_enabled:
        served = Runtime.from_settings(runtime.settings.model_copy(update={"otel_enabled": False}))
    app = create_app(served)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://taskgate") as http:
            ti, token = await factory.running_ti(http)
            beat = f"/execution/task-instances/{ti.id}/heartbeat"
            assert (await http.put(beat, json=BEAT_BODY, headers=bearer(token))).status_code == 204
            assert (await http.get("/execution/health/ping")).status_code == 200
    finally:
        if served is not runtime:
            await served.aclose()
    spans = exporter.get_finished_spans()
    if otel_enabled:  # /run, the heartbeat and the ping
        assert [s.kind for s in spans] == [SpanKind.SERVER] * 3, [s.name for s in spans]
    else:
        assert spans == (), [s.name for s in spans]
