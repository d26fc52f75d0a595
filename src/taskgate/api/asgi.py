"""The ASGI entry point for server processes: ``uvicorn --factory taskgate.api.asgi:app_from_env``
(what ``taskgate serve --workers N`` runs in each worker)."""

from __future__ import annotations

from fastapi import FastAPI

from taskgate import logs
from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.settings import Settings


def app_from_env() -> FastAPI:
    """An application for the settings in the environment. The signing key must already
    exist (``taskgate serve`` creates it before starting workers)."""
    settings = Settings()
    logs.configure(settings.log_format, settings.log_level, trace_ids=settings.otel_enabled)
    return create_app(Runtime.from_settings(settings, create_key=False))
