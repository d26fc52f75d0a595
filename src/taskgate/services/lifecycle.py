"""The lifecycle service: every step that changes a task instance, and what must follow it.

One ``Lifecycle`` is made by ``Runtime`` and shared by the API routes, the CLI and the
in-process client. Each method opens its own unit of work, runs one transition of the
state machine (``services.state_machine``) and then does what that transition requires:

- after a TI's state or tokens change in this process, the token gate's cached standing
  of that TI (``services.token_standing``) is dropped, so the next request reads it
  afresh instead of trusting it for up to ``token_standing_cache_seconds``;
- at ``/run`` with a workload token, the workload token is spent in the same transaction
  and an execution token is issued for the TI, bound to the key the request proved it
  holds (DPoP); a DAG whose tokens must be bound refuses a start without a proof first.

Each transition writes its event in its own transaction (``services.events``); ``actor``
names who asked (an operator, or ``LOCAL_ACTOR`` for the CLI on the database host).

Routes are adapters: they turn the wire model into arguments and the result into the
wire model, and cannot forget a step because no step is theirs.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import Dag, TaskInstance
from taskgate.services import events, state_machine
from taskgate.services.errors import TokenRefused, Unavailable
from taskgate.services.state_machine import RunContext
from taskgate.services.states import TIState
from taskgate.services.token_standing import StandingLookup, refusal_of
from taskgate.tokens import Refusal, TaskToken, TokenIssuer, TokenType, WorkloadToken
from taskgate.wire.http import TokenBinding

__all__ = ["Lifecycle", "QueuedTI", "RunContext", "Started"]


@dataclass(frozen=True)
class QueuedTI:
    ti: TaskInstance
    workload_token: str


@dataclass(frozen=True)
class Started:
    context: RunContext
    # The execution token the workload token was exchanged for; None when the TI was
    # started with an execution token (a repeated /run).
    execution_token: str | None


class Lifecycle:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        writes: GroupCommit,
        standing: StandingLookup,
        issuer: Callable[[], TokenIssuer | None],
        *,
        leeway: float,
        token_binding: str = "bearer",
    ) -> None:
        self._sessions = sessions
        self._token_binding = token_binding  # for DAGs registered without one
        self._writes = writes
        self._standing = standing
        # Read on each use: a key reload swaps the issuer without a restart.
        self._issuer = issuer
        self._leeway = leeway

    def _require_issuer(self, kind: TokenType) -> TokenIssuer:
        issuer = self._issuer()
        if issuer is None:
            raise Unavailable("no_signing_key", f"This node cannot issue {kind} tokens")
        return issuer

    @asynccontextmanager
    async def _changing(self, ti_id: uuid.UUID) -> AsyncIterator[AsyncSession]:
        """A session for a transition of ``ti_id``; afterwards, whatever happened, the
        token gate's cached standing of the TI is dropped."""
        try:
            async with self._sessions() as session:
                yield session
        finally:
            self._standing.forget(ti_id)

    async def queue(self, ti_id: uuid.UUID, *, actor: str = events.LOCAL_ACTOR) -> QueuedTI:
        """Queue the TI for a worker and issue the workload token that starts it (every
        token issued for the TI before stops counting)."""
        issuer = self._require_issuer(TokenType.WORKLOAD)
        async with self._changing(ti_id) as session:
            ti = await state_machine.queue(session, ti_id, actor=actor)
        return QueuedTI(ti, issuer.issue(ti.id, TokenType.WORKLOAD))

    async def start(
        self,
        ti_id: uuid.UUID,
        token: TaskToken,
        *,
        hostname: str,
        unixname: str,
        pid: int,
        start_date: datetime,
        bind_to: str | None = None,
    ) -> Started:
        """queued -> running, for the process named. With a workload ``token`` it is
        spent (single use) and exchanged for an execution token, bound to the key whose
        thumbprint is ``bind_to`` (the request proved it holds that key) if given."""
        workload = token if isinstance(token, WorkloadToken) else None
        issuer = self._require_issuer(TokenType.EXECUTION) if workload is not None else None
        # Signed before the transaction (not while it holds a connection), so that its
        # expiry is noted with the transition; the token of a start that does not commit
        # is never handed out, and one revoked meanwhile is refused (issued before the
        # watermark).
        issued = issuer.mint(ti_id, jkt=bind_to) if issuer is not None else None
        async with self._changing(ti_id) as session:
            if workload is not None and bind_to is None and \
                    await self._token_binding_of(session, ti_id) == TokenBinding.DPOP:
                raise TokenRefused(Refusal.DAG_REQUIRES_DPOP)  # before the token is spent
            context = await state_machine.start(
                session,
                ti_id,
                hostname=hostname,
                unixname=unixname,
                pid=pid,
                start_date=start_date,
                workload=(workload.jti, workload.exp + self._leeway) if workload else None,
                token_expires_at=issued.exp if issued is not None else None,
            )
        return Started(context, issued.token if issued is not None else None)

    async def reissue(self, token: TaskToken) -> str | None:
        """A successor of the execution ``token``: same subject, type and key binding
        (``cnf.jkt``), a new lifetime; its expiry noted on the TI. None when this node
        cannot sign, the TI has ended, or the token was revoked (read fresh from the
        database: the request carrying it may have just ended the TI)."""
        issuer = self._issuer()
        if issuer is None:
            return None
        current = await self._standing.fresh(token.sub)
        if current is None or current.ended:
            return None
        if refusal_of(token.iat, current, state_machine_route=True) is not None:
            return None
        issued = issuer.mint(token.sub, token.token_type, jkt=token.jkt)
        await state_machine.token_issued(self._writes, token.sub, exp=issued.exp)
        return issued.token

    async def _token_binding_of(self, session: AsyncSession, ti_id: uuid.UUID) -> str:
        binding = await session.scalar(
            select(Dag.token_binding).join(TaskInstance, TaskInstance.dag_id == Dag.dag_id)
            .where(TaskInstance.id == ti_id)
        )
        return binding or self._token_binding

    async def heartbeat(
        self, ti_id: uuid.UUID, *, hostname: str, pid: int, token_iat: float
    ) -> None:
        """Keep the running TI alive; only its own process may, with a token issued at
        ``token_iat`` that was not revoked (``TokenRefused`` else). Changes no standing."""
        await state_machine.heartbeat(
            self._writes, ti_id, hostname=hostname, pid=pid, token_iat=token_iat
        )

    async def report_state(self, ti_id: uuid.UUID, state: TIState, **details: Any) -> None:
        """running -> ``state`` (``details``: see ``state_machine.report_state``)."""
        async with self._changing(ti_id) as session:
            await state_machine.report_state(session, ti_id, state, **details)

    async def skip_downstream(
        self, ti_id: uuid.UUID, tasks: list[str | tuple[str, int]]
    ) -> int:
        """Mark the listed not-yet-started TIs of the TI's run skipped; how many were."""
        async with self._sessions() as session:
            skipped = await state_machine.skip_downstream(session, ti_id, tasks)
        for skipped_id in skipped:
            self._standing.forget(skipped_id)
        return len(skipped)

    async def revoke_tokens(self, ti_id: uuid.UUID, *, actor: str = events.LOCAL_ACTOR) -> float:
        """Invalidate every token issued for the TI up to now; the watermark."""
        async with self._changing(ti_id) as session:
            return await state_machine.revoke_tokens(session, ti_id, actor=actor)
