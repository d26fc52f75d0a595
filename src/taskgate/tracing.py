"""OpenTelemetry trace propagation: optional (``pip install 'taskgate[otel]'``), off unless
``TASKGATE_OTEL_ENABLED`` is set.

When enabled, every request runs in a server span that continues the caller's trace (the
W3C ``traceparent`` header, through the globally configured propagators), and the server's
log events carry ``trace_id`` and ``span_id``. Spans go to the global tracer provider: the
one that ``opentelemetry-instrument`` (or the operator's own bootstrap) configured with
its exporters; when none is configured, an SDK provider that records spans without
exporting them, so the ids in the logs are the server's own spans.

This module imports OpenTelemetry only when tracing is enabled; without the packages,
enabling it fails at start-up with ``TracingUnavailable``.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

INSTALL_HINT = "pip install 'taskgate[otel]'"
SERVICE_NAME = "taskgate"


class TracingUnavailable(RuntimeError):
    """Tracing is enabled but the OpenTelemetry packages are missing."""


def require_opentelemetry() -> None:
    """Raise ``TracingUnavailable`` unless the ``otel`` extra is installed."""
    try:
        import opentelemetry.instrumentation.asgi
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise TracingUnavailable(
            f"TASKGATE_OTEL_ENABLED is set, but OpenTelemetry is not installed "
            f"({exc.name or exc}): {INSTALL_HINT}"
        ) from None


def tracer_provider() -> Any:
    """The global tracer provider; an SDK one (set as global) if none was configured."""
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    current = trace.get_tracer_provider()
    if isinstance(current, trace.ProxyTracerProvider):
        # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES too.
        resource = Resource.create({"service.name": SERVICE_NAME})
        trace.set_tracer_provider(TracerProvider(resource=resource))
        current = trace.get_tracer_provider()
    return current


def server_span_middleware(provider: Any = None) -> tuple[type, dict[str, Any]]:
    """The ASGI middleware class and its options: one server span per HTTP request (no
    extra spans per ASGI message), continuing the caller's trace. It is named after the
    method only; ``SpanRouteMiddleware`` names it after the route once that is known."""
    require_opentelemetry()
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    return OpenTelemetryMiddleware, {
        "tracer_provider": provider if provider is not None else tracer_provider(),
        "exclude_spans": ["receive", "send"],
        "default_span_details": lambda scope: (scope.get("method") or "HTTP", {}),
    }


class SpanRouteMiddleware:
    """Sets the server span's name to ``METHOD /route/{template}`` and its ``http.route``
    after routing: templates, never concrete paths (ids stay out of span names)."""

    def __init__(self, app: ASGIApp, routes: Callable[[], dict[int, str]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def name_span(message: Message) -> None:
            # Routing is done when the answer starts; the span ends with the answer.
            if message["type"] == "http.response.start":
                self._name(scope)
            await send(message)

        await self.app(scope, receive, name_span)

    def _name(self, scope: Scope) -> None:
        from opentelemetry import trace

        route = scope.get("route")
        template = self.routes().get(id(route)) if route is not None else None
        span = trace.get_current_span()
        if template is not None and span.is_recording():
            span.set_attribute("http.route", template)
            span.update_name(f"{scope['method']} {template}")


def add_trace_ids(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """structlog processor: ``trace_id`` and ``span_id`` (hex, as in ``traceparent``) of
    the span the event is logged in, if any."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event.setdefault("trace_id", format(context.trace_id, "032x"))
        event.setdefault("span_id", format(context.span_id, "016x"))
    return event
