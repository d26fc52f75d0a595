"""Structured logs (structlog): one JSON object per line for servers, readable lines for
the console. Every event of a request carries its ``correlation_id`` (bound by the
correlation-id middleware through contextvars)."""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

LogFormat = Literal["json", "console"]


def configure(log_format: LogFormat, level: str = "info", *, trace_ids: bool = False) -> None:
    """Configure structlog. With ``trace_ids`` (OpenTelemetry enabled) every event logged
    inside a span carries its ``trace_id`` and ``span_id``."""
    import structlog

    renderer = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    tracing: list[structlog.typing.Processor] = []
    if trace_ids:
        from taskgate.tracing import add_trace_ids

        tracing.append(add_trace_ids)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *tracing,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.dict_tracebacks,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


class _LoggerOnFirstUse:
    """structlog's logger ``name``, imported when first used: structlog (and the Rich it
    loads for tracebacks) costs a CLI command ~0.1 s it may never log with."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, method: str) -> Any:
        if self._logger is None:
            import structlog

            self._logger = structlog.get_logger(self._name)
        return getattr(self._logger, method)


def get_logger(name: str) -> Any:
    """A logger for modules the CLI loads (the runtime, the services)."""
    return _LoggerOnFirstUse(name)
