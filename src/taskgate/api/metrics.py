"""Prometheus metrics, served at ``GET /metrics``.

One pure ASGI middleware observes every request: the route template (never the concrete
path, so label cardinality stays bounded), method, status and latency; security refusals
by reason (the security layers note the reason on the ASGI scope), each also recorded in
the refusal log (``services.refusal_log``); fresh tokens handed out
in ``Refreshed-API-Token`` by kind. Database faults by reason, the time each checkout of a
database connection took, requests shed by admission control. The database pool is read
at scrape time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskgate.security.reissue import REFRESH_HEADER
from taskgate.security.request_auth import auth_of
from taskgate.services.refusal_log import RefusalLog
from taskgate.tokens import TokenType

log = structlog.get_logger("taskgate.api")

SHED_LOG_SECONDS = 5.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """The metrics of one application (its own registry, so apps do not share counters)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "taskgate_http_requests_total", "HTTP requests by route template and status.",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "taskgate_http_request_duration_seconds", "Time to answer, by route template.",
            ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.denials = Counter(
            "taskgate_auth_denials_total", "Requests refused by the security layers, by reason.",
            ["reason"], registry=self.registry,
        )
        self.tokens = Counter(
            "taskgate_tokens_issued_total",
            "Execution tokens handed out: 'exchanged' at /run for a workload token, "
            "'refreshed' near expiry.",
            ["kind"], registry=self.registry,
        )

        self.database_faults = Counter(
            "taskgate_database_faults_total",
            "Requests answered 503 for a database fault, by reason (database_unavailable, "
            "database_timeout, database_read_only, database_full).",
            ["reason"], registry=self.registry,
        )
        self.database_wait = Histogram(
            "taskgate_db_checkout_seconds",
            "Time to get a database connection: waiting for a free one, connecting, the "
            "liveness check.",
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.shed = Counter(
            "taskgate_requests_shed_total",
            "Requests answered 503 overloaded by admission control; kind: liveness "
            "(heartbeat, state, /run) or other.",
            ["kind"], registry=self.registry,
        )
        self._shed_logged = time.monotonic() - SHED_LOG_SECONDS
        self._shed_since_log = 0

    def watch_pool(self, pool: Callable[[], Any]) -> None:
        self.registry.register(_PoolCollector(pool))
        current = pool()
        if current is not None and hasattr(current, "on_checkout"):
            current.on_checkout = self.database_wait.observe

    def shed_request(self, liveness: bool) -> None:
        self.shed.labels("liveness" if liveness else "other").inc()
        self._shed_since_log += 1
        now = time.monotonic()
        if now - self._shed_logged >= SHED_LOG_SECONDS:
            # One line per few seconds, not per request: shedding means thousands a second.
            log.warning("overloaded: requests shed", shed=self._shed_since_log,
                        seconds=round(now - self._shed_logged, 1))
            self._shed_logged, self._shed_since_log = now, 0


class _PoolCollector:
    def __init__(self, pool: Callable[[], Any]) -> None:
        self._pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = self._pool()
        for name, doc, reader in (
            ("taskgate_db_pool_checked_out", "Connections in use.", "checkedout"),
            ("taskgate_db_pool_size", "Connections the pool keeps.", "size"),
            ("taskgate_db_pool_overflow", "Connections beyond the pool size.", "overflow"),
        ):
            value = getattr(pool, reader, None) if pool is not None else None
            if callable(value):
                yield GaugeMetricFamily(name, doc, value=value())


def route_template(routes: dict[int, str], scope: Scope) -> str:
    """The template of the route that answered (``routes``: by ``id`` of the declared
    route), or ``unmatched``; for metrics and the access log alike."""
    route = scope.get("route")
    return routes.get(id(route), "unmatched") if route is not None else "unmatched"


class MetricsMiddleware:
    def __init__(
        self, app: ASGIApp, metrics: Metrics, routes: Callable[[], dict[int, str]],
        refusals: Callable[[], RefusalLog | None] = lambda: None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # Each refusal counted here is also recorded, for the operator page: the one
        # place that knows the route, the status and the refusal together.
        self.refusals = refusals
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client sees if the app fails before answering

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if any(name == REFRESH_HEADER for name, _ in message.get("headers", [])):
                    auth = auth_of(scope)
                    exchanged = (
                        auth is not None
                        and auth.token is not None
                        and auth.token.token_type is TokenType.WORKLOAD
                    )
                    self.metrics.tokens.labels("exchanged" if exchanged else "refreshed").inc()
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            route = route_template(self.routes(), scope)
            method = scope["method"]
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)
            auth = auth_of(scope)
            if auth is not None and auth.refusal is not None:
                self.metrics.denials.labels(auth.refusal.code).inc()
                refusal_log = self.refusals()
                if refusal_log is not None:
                    refusal_log.note(method=method, route=route, status=status,
                                     reason=auth.refusal.code,
                                     ti_id=auth.token.sub if auth.token else None)
