"""Health routes. Security policy: none (no token), and they touch no data."""

from __future__ import annotations

from fastapi import APIRouter

from taskgate.security import TaskRoute

router = APIRouter(prefix="/health", tags=["Health"], route_class=TaskRoute)


@router.get("")
async def health() -> dict[str, str]:
    return {"status": "healthy"}


@router.get("/ping")
async def ping() -> dict[str, object]:
    """Liveness: the process answers. (It does not touch the database.)"""
    return {"ok": ["api"], "failing": {}}
