"""Structured logs (structlog): one JSON object per line for servers, readable lines for
the console. Every event of a request carries its ``correlation_id`` (bound by the
correlation-id middleware through contextvars).

A server process has one output: structlog's events and the standard library's records
(uvicorn's start-up, shutdown and error lines, Python warnings, libraries) all end in one
``logging`` handler on stderr whose ``ProcessorFormatter`` renders them alike, so a log
shipper reads one format. ``stdlib_config`` is that handler's configuration, given to
uvicorn as its ``log_config`` (uvicorn applies it in every worker process it starts).
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal

LogFormat = Literal["json", "console"]

# The stdlib logger of the one event per request (``taskgate.api.middleware.access_log``);
# ``taskgate serve --no-access-log`` switches it off.
ACCESS_LOGGER = "taskgate.access"
# Above CRITICAL: a logger at this level lets nothing through.
OFF = logging.CRITICAL + 1


def configure(log_format: LogFormat, level: str = "info", *, trace_ids: bool = False) -> None:
    """Configure structlog. With ``trace_ids`` (OpenTelemetry enabled) every event logged
    inside a span carries its ``trace_id`` and ``span_id``.

    Events go to the standard library's ``logging``; when nobody configured it yet (the
    application run by a plain ``uvicorn --factory``, without our ``log_config``), it is
    configured here with ``stdlib_config``."""
    import logging.config

    import structlog

    tracing: list[structlog.typing.Processor] = []
    if trace_ids:
        from taskgate.tracing import add_trace_ids

        tracing.append(add_trace_ids)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *tracing,
            *_stamps(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        # Filtering here, before any processor runs, keeps a skipped event nearly free.
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    if not logging.getLogger().handlers:
        logging.config.dictConfig(stdlib_config(log_format, level))
    logging.captureWarnings(True)


def stdlib_config(log_format: LogFormat, level: str = "info", *, access_log: bool = True) -> dict[str, Any]:
    """The ``logging.config.dictConfig`` of a server process: one handler on stderr that
    renders every record in ``log_format``. Only strings: uvicorn hands it to worker
    processes it spawns. ``level`` is taskgate's own (``taskgate.*``); uvicorn's lines
    stay at info, as uvicorn logs them, and other libraries' at warning."""
    taskgate_level = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"taskgate": {"()": f"{__name__}.formatter", "log_format": log_format}},
        "handlers": {
            "taskgate": {
                "class": "logging.StreamHandler",
                "formatter": "taskgate",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["taskgate"], "level": "WARNING"},
        "loggers": {
            # No handlers of their own: they reach the root's, as every other logger does.
            "uvicorn": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.error": {"handlers": [], "level": "INFO", "propagate": True},
            "uvicorn.access": {"handlers": [], "level": "INFO", "propagate": True},
            "taskgate": {"level": taskgate_level},
            # SQLAlchemy logs under its pool's class name, ours in taskgate.db.pool: its
            # lines are a library's, not taskgate's events.
            "taskgate.db.pool": {"level": "WARNING"},
            ACCESS_LOGGER: {"level": taskgate_level if access_log else OFF},
        },
    }


def formatter(log_format: LogFormat) -> logging.Formatter:
    """structlog's ``ProcessorFormatter``, rendering structlog's events and the standard
    library's records (given the same level and time stamp first) in ``log_format``."""
    import structlog

    rendering: list[structlog.typing.Processor]
    if log_format == "json":
        rendering = [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        rendering = [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, *_stamps()],
        processors=[
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            *rendering,
        ],
    )


def _stamps() -> list[Any]:
    import structlog

    return [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


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
