"""``GET /metrics``: Prometheus text format. Security policy: none (no token) — it holds
counts by route template and reason, never ids, keys or values; restrict it at the
network (scraper) level if needed."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from taskgate.security import TaskRoute

router = APIRouter(tags=["Operations"], route_class=TaskRoute)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
