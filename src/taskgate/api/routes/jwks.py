"""``GET /.well-known/jwks.json``: the public keys that validate our tokens.
Security policy: none; shared secrets (HS512) are never published."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from taskgate.api.deps import RuntimeDep
from taskgate.security import TaskRoute
from taskgate.tokens import jwks_document

router = APIRouter(tags=["Keys"], route_class=TaskRoute)


@router.get("/.well-known/jwks.json")
async def jwks(runtime: RuntimeDep) -> dict[str, Any]:
    return jwks_document(runtime.validator.keys)
