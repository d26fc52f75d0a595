"""The ASGI application: Execution API under ``/execution`` plus the JWKS document."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.telemetry import TelemetryConfig

import taskgate
from taskgate import tracing
from taskgate.api import docs_pages, errors, ui_page
from taskgate.api.control.app import (
    CONTROL_DOCS,
    CONTROL_PREFIX,
    control_docs_page,
    create_control_app,
)
from taskgate.api.metrics import Metrics, MetricsMiddleware
from taskgate.api.middleware.access_log import AccessLogMiddleware
from taskgate.api.middleware.admission import AdmissionMiddleware
from taskgate.api.middleware.api_version import ApiVersionMiddleware
from taskgate.api.middleware.body_limit import BodyLimitMiddleware
from taskgate.api.middleware.correlation import CorrelationIdMiddleware
from taskgate.api.middleware.deadline import DeadlineMiddleware
from taskgate.api.routes import (
    connections,
    dag_runs,
    health,
    jwks,
    task_instance_queries,
    task_instances,
    task_reschedules,
    task_state_store,
    variables,
    xcoms,
)
from taskgate.api.routes import metrics as metrics_route
from taskgate.db.availability import Fault
from taskgate.runtime import Runtime
from taskgate.security import TokenReissueMiddleware
from taskgate.security.dpop_nonce import DPoPNonceMiddleware
from taskgate.security.route_policy import check_policies_are_local, served_routes
from taskgate.security.routing import SECURITY_SCHEME_NAME
from taskgate.settings import Settings
from taskgate.signals import also_on_stop_signals
from taskgate.wire.http import EXECUTION_PREFIX

log = structlog.get_logger("taskgate.api")

NO_FASTAPI_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

# Requests are matched against routers in this order: the heartbeat (most requests)
# and the other lifecycle routes come first. The order decides speed only: no request
# matches routes of two routers (tests/api/test_route_order.py).
EXECUTION_ROUTERS = (
    task_instances.heartbeat_router,
    task_instances.lifecycle_router,
    task_instances.router,
    health.router,
    task_instance_queries.router,
    task_reschedules.router,
    task_state_store.router,
    dag_runs.router,
    connections.router,
    variables.router,
    xcoms.router,
)


def create_app(runtime: Runtime | None = None, *, tracer_provider: Any = None) -> FastAPI:
    """The application serving ``runtime``. Without a runtime it can be inspected (routes,
    OpenAPI document) but not served. With ``otel_enabled`` in the runtime's settings,
    requests run in OpenTelemetry server spans (``tracer_provider``: default, the global
    one)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runtime is None:
            raise RuntimeError("create_app() without a runtime cannot serve requests")
        await runtime.prepare_database()
        await runtime.announce()
        loop = asyncio.get_running_loop()
        end_event_streams = also_on_stop_signals(
            lambda: loop.call_soon_threadsafe(runtime.events.stop)
        )
        chores = [
            asyncio.create_task(runtime.watch_keys()),
            asyncio.create_task(runtime.purge_periodically()),
            asyncio.create_task(runtime.announce_periodically()),
        ]
        try:
            yield
        finally:
            end_event_streams()
            runtime.events.stop()
            for chore in chores:
                chore.cancel()
            await runtime.aclose()

    app = FastAPI(
        title="taskgate Execution API",
        version=taskgate.__version__,
        lifespan=lifespan,
        # taskgate's tracing is its own (TASKGATE_OTEL_ENABLED, below). FastAPI's native
        # telemetry would otherwise add spans, metrics and logs of its own whenever a
        # global OpenTelemetry provider exists, whatever that setting says, and asks
        # whether one exists on every request.
        telemetry=NO_FASTAPI_TELEMETRY,
        # Our own pages instead (api/docs_pages.py): Swagger UI from the package, under a
        # strict Content-Security-Policy. No ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.runtime = runtime
    # Routers carry their own security policy; they are included with a prefix only, so
    # what a router file declares is the whole policy of its routes.
    for router in EXECUTION_ROUTERS:
        app.include_router(router, prefix=EXECUTION_PREFIX)
    app.include_router(jwks.router)
    app.include_router(metrics_route.router)
    app.include_router(docs_pages.router)
    app.include_router(ui_page.router)
    app.state.metrics = metrics = Metrics()
    if runtime is not None:
        metrics.watch_pool(lambda: runtime.engine.sync_engine.pool)

    def on_database_fault(fault: Fault, path: str, error: str) -> None:
        log.error("database fault", reason=fault.value, error=error, path=path)
        metrics.database_faults.labels(fault.value).inc()
        if runtime is not None:
            runtime.faults.note(fault)

    control_app = create_control_app(runtime, on_database_fault)
    app.mount(CONTROL_PREFIX, control_app)
    app.add_api_route(CONTROL_DOCS, control_docs_page, methods=["GET", "HEAD"],
                      include_in_schema=False)
    check_policies_are_local(app.routes)
    # The templates metrics, access log and spans are labelled with, the mounted control
    # API's included: a request records the route that answered it, wherever it lives.
    route_templates = {id(declared): path for path, _m, declared, _e in served_routes(app.routes)}
    route_templates.update({
        id(declared): CONTROL_PREFIX + path
        for path, _m, declared, _e in served_routes(control_app.routes)
    })
    errors.install(app, on_database_fault)
    app.add_middleware(DPoPNonceMiddleware, nonces=lambda: runtime and runtime.nonces)
    app.add_middleware(
        TokenReissueMiddleware,
        lifecycle=lambda: runtime and runtime.lifecycle,
    )
    app.add_middleware(ApiVersionMiddleware)
    settings = runtime.settings if runtime else Settings()
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_request_body_bytes)
    app.add_middleware(
        DeadlineMiddleware,
        seconds=settings.db_request_deadline,
        on_timeout=lambda scope: on_database_fault(Fault.TIMEOUT, scope["path"], "deadline"),
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics, routes=lambda: route_templates,
                       refusals=lambda: runtime and runtime.refusals)
    app.add_middleware(AccessLogMiddleware, routes=lambda: route_templates)
    app.add_middleware(CorrelationIdMiddleware)
    if runtime is not None and runtime.settings.otel_enabled:
        # Everything below, logging included, runs inside the server span.
        middleware, options = tracing.server_span_middleware(tracer_provider)
        app.add_middleware(tracing.SpanRouteMiddleware, routes=lambda: route_templates)
        app.add_middleware(middleware, **options)
    # Outermost: a request past capacity costs nothing more than its answer.
    app.add_middleware(
        AdmissionMiddleware,
        limit=settings.effective_max_requests_in_flight,
        on_shed=metrics.shed_request,
    )
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
        schema.setdefault("components", {}).setdefault("securitySchemes", {})[
            SECURITY_SCHEME_NAME
        ] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
        app.openapi_schema = schema
    return app.openapi_schema
