"""Whether a TI's tokens still count: the token gate's view of the database.

A token is refused when it was issued before its TI's ``tokens_not_before`` watermark
(revocation, or a newer try), and -- except on the lifecycle routes, where the state
machine answers -- when its TI has ended. Lookups are cached per TI for at most
``ttl`` seconds, so a revocation reaches every replica within that time.

The same row carries who the TI is (DAG, run, task, map index, the DAG's team) and what
its DAG declares it may read: the access policy's requester. Identity and team never
change for a TI (a DAG's team cannot be changed in place), and a changed declaration is
read here within ``ttl``, so the access policy reads them from here instead of querying
again.
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.db.direct import DirectStatement
from taskgate.db.models import Dag, TaskInstance, UsedWorkloadToken
from taskgate.services.states import TERMINAL
from taskgate.tokens import Refusal, TaskToken, WorkloadToken


@dataclass(frozen=True, slots=True)
class Standing:
    state: str
    tokens_not_before: float | None
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    team: str | None
    access: str | None = None  # the DAG's declared access, as stored (declared_access)
    try_number: int = 0  # for the read audit, with the worker's hostname
    hostname: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL


def refusal_of(
    token_iat: float, standing: Standing | None, *, state_machine_route: bool
) -> Refusal | None:
    """Why a token of a TI in ``standing`` is refused, or None. Unknown TIs pass: the
    route answers 404 for them."""
    if standing is None:
        return None
    if revoked(token_iat, standing.tokens_not_before):
        return Refusal.REVOKED
    if standing.ended and not state_machine_route:
        return Refusal.TI_ENDED
    return None


def revoked(token_iat: float, tokens_not_before: float | None) -> bool:
    """Whether a token issued at ``token_iat`` is before its TI's watermark."""
    return tokens_not_before is not None and token_iat < tokens_not_before


def watermark(now: float) -> float:
    """``tokens_not_before`` for "now": floored to the millisecond, as token ``iat``s are,
    so every token issued afterwards is at or above it."""
    return math.floor(now * 1000) / 1000


# A TI's ``Standing``, its fields in order. Read on every cache miss (each TI about once a
# second under load), so sent straight to the driver (``DirectStatement``).
_STANDING = DirectStatement(
    select(
        TaskInstance.state,
        TaskInstance.tokens_not_before,
        TaskInstance.dag_id,
        TaskInstance.run_id,
        TaskInstance.task_id,
        TaskInstance.map_index,
        Dag.team,
        Dag.access,
        TaskInstance.try_number,
        TaskInstance.hostname,
    )
    .join(Dag, Dag.dag_id == TaskInstance.dag_id)
    .where(TaskInstance.id == bindparam("ti_id"))
)
_SPENT = DirectStatement(
    select(UsedWorkloadToken.jti).where(UsedWorkloadToken.jti == bindparam("jti"))
)


class StandingLookup:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        ttl: float = 1.0,
        max_entries: int = 50_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._ttl = ttl
        self._max_entries = max_entries
        self._clock = clock
        self._cache: OrderedDict[uuid.UUID, tuple[float, Standing | None]] = OrderedDict()

    async def get(self, ti_id: uuid.UUID) -> Standing | None:
        if self._ttl > 0:
            hit = self._cache.get(ti_id)
            if hit is not None and hit[0] > self._clock():
                return hit[1]
        return await self.fresh(ti_id)

    async def fresh(self, ti_id: uuid.UUID) -> Standing | None:
        row = await _STANDING.first(self._engine, {"ti_id": ti_id})
        standing = Standing(*row) if row is not None else None
        if self._ttl > 0:
            self._cache[ti_id] = (self._clock() + self._ttl, standing)
            self._cache.move_to_end(ti_id)
            while len(self._cache) > self._max_entries:
                self._cache.popitem(last=False)
        return standing

    async def workload_spent(self, jti: str) -> bool:
        """Whether a workload token with this jti already started its TI (never cached)."""
        return await _SPENT.first(self._engine, {"jti": jti}) is not None

    def forget(self, ti_id: uuid.UUID) -> None:
        """Drop a cached entry after this process changed the TI."""
        self._cache.pop(ti_id, None)


async def gate_refusal(
    lookup: StandingLookup, token: TaskToken, *, state_machine_route: bool
) -> Refusal | None:
    """The token gate for a validated token, or None when it passes: a workload token
    starts its TI once, then ``refusal_of`` the TI's standing. One function, so that the
    server (``security.authorization``) and ``taskgate doctor --token`` decide alike."""
    if isinstance(token, WorkloadToken) and await lookup.workload_spent(token.jti):
        return Refusal.WORKLOAD_TOKEN_REUSED
    return refusal_of(
        token.iat, await lookup.get(token.sub), state_machine_route=state_machine_route
    )
