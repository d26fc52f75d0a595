"""Health routes. Security policy: none (no token); they reveal only whether the
database answers, and which fault it has if not."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from taskgate.api.deps import RuntimeDep
from taskgate.db.availability import Fault, fault_of
from taskgate.runtime import Runtime
from taskgate.security import TaskRoute
from taskgate.wire.http import HEALTH

router = APIRouter(prefix=HEALTH, tags=["Health"], route_class=TaskRoute)

# How the readiness answer names each fault ("unreachable" as it always has).
DATABASE_STATE = {
    Fault.UNAVAILABLE: "unreachable",
    Fault.TIMEOUT: "timeout",
    Fault.READ_ONLY: "read_only",
    Fault.FULL: "full",
}
# A fault requests met this recently still counts, though SELECT 1 now succeeds: a full
# disk, a read-only file or another process's lock leave reads working.
RECENT_FAULT_SECONDS = 1.0


async def database_fault(runtime: Runtime) -> Fault | None:
    """The database's fault now: it does not answer a trivial query, or a request met a
    fault in the last second; None when it is fine."""
    try:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:
        fault = fault_of(exc)
        if fault is None:
            raise
        runtime.faults.note(fault)
        return fault
    return runtime.faults.recent(RECENT_FAULT_SECONDS)


@router.get("", responses={503: {"description": "The database does not answer, or faults"}})
async def health(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: 200 when the database answers a trivial query and no request met a
    database fault in the last second; else 503 naming the fault."""
    fault = await database_fault(runtime)
    if fault is not None:
        body = {"status": "unhealthy", "database": DATABASE_STATE[fault], "reason": fault.value}
        return JSONResponse(body, status_code=503, headers={"Retry-After": str(fault.retry_after)})
    return JSONResponse({"status": "healthy", "database": "ok"})


@router.get("/ping")
async def ping() -> dict[str, object]:
    """Liveness: the process answers. (It does not touch the database.)"""
    return {"ok": ["api"], "failing": {}}
