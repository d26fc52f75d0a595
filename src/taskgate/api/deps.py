"""Dependencies shared by the routers: runtime, database session, requesting TI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from taskgate.runtime import Runtime
from taskgate.security import CurrentToken
from taskgate.services import access


async def get_runtime(request: Request) -> Runtime:
    """The runtime serving this request (``Runtime.of``, typed)."""
    return Runtime.of(request)


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with Runtime.of(request).sessionmaker() as session:
        yield session


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
# scope="function": the session closes when the handler returns, before the response
# starts, so its connection is back in the pool before the re-issue step needs one.
DbSession = Annotated[AsyncSession, Depends(db_session, scope="function")]


async def requesting_ti(token: CurrentToken, runtime: RuntimeDep) -> access.Requester:
    """The task instance behind the token, with its team, for the access policy (from the
    token gate's lookup of the same request: no second query)."""
    return access.requester(
        token.sub, await runtime.standing.get(token.sub),
        require_declared=runtime.settings.require_declared_access,
    )


Requester = Annotated[access.Requester, Depends(requesting_ti)]
