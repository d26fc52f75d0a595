"""The control API application, mounted by ``taskgate.api.app`` at ``/control/v1``: its
own routes, OpenAPI document and error answers, the same runtime as the Execution API."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse

import taskgate
from taskgate.api import docs_pages, errors
from taskgate.api.control import (
    audit,
    dags,
    events,
    health,
    operators,
    refusals,
    secrets,
    sessions,
    task_instances,
    xcoms,
)
from taskgate.runtime import Runtime
from taskgate.security.oidc import OidcVerifier
from taskgate.security.operator_auth import SCHEME_NAME

CONTROL_PREFIX = "/control/v1"
# The control API's own OpenAPI page, beside (not inside) the versioned API.
CONTROL_DOCS = "/control/docs"
CONTROL_ROUTERS = (
    dags.router, task_instances.router, secrets.router, xcoms.router, operators.router,
    events.router, audit.router, sessions.router, refusals.router,
    health.router,
)


def create_control_app(runtime: Runtime | None, report_fault: errors.FaultReporter) -> FastAPI:
    """The control API on ``runtime``; database faults are told to ``report_fault`` (the
    serving application's metrics and health)."""
    app = FastAPI(
        title="taskgate control API",
        version=taskgate.__version__,
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    # One per application: it keeps the identity provider's keys for every request.
    settings = runtime.settings if runtime else None
    app.state.oidc_verifier = (
        OidcVerifier.from_settings(settings) if settings and settings.control_oidc_enabled
        else None
    )
    for router in CONTROL_ROUTERS:
        app.include_router(router)
    errors.install(app, report_fault)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def control_docs_page() -> HTMLResponse:
    """``/control/docs``: the interactive page of the control API's OpenAPI document
    (served by the main application, which mounts the control API)."""
    return docs_pages.page("taskgate control API", f"{CONTROL_PREFIX}/openapi.json")


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes,
                             servers=[{"url": CONTROL_PREFIX}])
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[SCHEME_NAME] = {
            "type": "http", "scheme": "bearer", "description": "An operator key (tgk_...)",
        }
        app.openapi_schema = schema
    return app.openapi_schema
