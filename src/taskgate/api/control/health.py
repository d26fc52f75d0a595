"""Control API: the service's health as an operator needs it: the database, the signing
key and the keys accepted (key rotation), and the replicas serving this database.

Security policy: an operator key with role ``reader`` (it names no DAG: any team). It
shows key ids and algorithms, never key material.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Security

from taskgate.api.deps import RuntimeDep
from taskgate.api.routes.health import DATABASE_STATE, database_fault
from taskgate.security.operator_auth import ControlRoute, require_operator
from taskgate.services import replicas

router = APIRouter(
    prefix="/health",
    tags=["Health"],
    route_class=ControlRoute,
    dependencies=[Security(require_operator, scopes=["role:reader"])],
)


@router.get("")
async def service_health(runtime: RuntimeDep) -> dict[str, Any]:
    """``database`` (``ok`` or the fault), ``signing_key`` (kid and algorithm; null on a
    validation-only replica), ``accepted_keys`` (every key a token may be signed with:
    more than one while a rotation's old key still validates), ``replicas`` seen in the
    last 30 s, and which of them answered (``this_replica``)."""
    fault = await database_fault(runtime)
    keys = runtime.keys
    seen: list[dict[str, Any]] = []
    if fault is None:
        async with runtime.sessionmaker() as session:
            seen = [
                {"replica_id": r.replica_id, "hostname": r.hostname, "pid": r.pid,
                 "version": r.version, "started_at": r.started_at.isoformat(),
                 "last_seen_at": r.last_seen_at.isoformat()}
                for r in await replicas.seen(session)
            ]
    return {
        "database": "ok" if fault is None else DATABASE_STATE[fault],
        "signing_key": None if keys.signing is None else {
            "kid": keys.signing.kid, "algorithm": keys.signing.algorithm},
        "accepted_keys": [{"kid": k.kid, "algorithm": k.algorithm} for k in keys.verification],
        "replicas": seen,
        "this_replica": runtime.replica.replica_id,
    }
