"""Health routes. Security policy: none (no token); they reveal only whether the
database answers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from taskgate.api.deps import RuntimeDep
from taskgate.db.availability import unavailable
from taskgate.security import TaskRoute
from taskgate.wire.http import HEALTH

router = APIRouter(prefix=HEALTH, tags=["Health"], route_class=TaskRoute)


@router.get("", responses={503: {"description": "The database does not answer"}})
async def health(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: 200 when the database answers a trivial query, else 503."""
    try:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        if not unavailable(exc):
            raise
        return JSONResponse({"status": "unhealthy", "database": "unreachable"}, status_code=503)
    return JSONResponse({"status": "healthy", "database": "ok"})


@router.get("/ping")
async def ping() -> dict[str, object]:
    """Liveness: the process answers. (It does not touch the database.)"""
    return {"ok": ["api"], "failing": {}}
