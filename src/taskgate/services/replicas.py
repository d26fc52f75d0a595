"""Replicas: the ``taskgate serve`` processes sharing one database, as each last said it
was alive, so an operator can see how many serve (the operator page's health).

Each process announces itself when it starts and every ``ANNOUNCE_SECONDS`` after
(hostname, pid, version, start time) under an id of its own start; one is *seen* while its
last announcement is younger than ``SEEN_WITHIN``. A process that stops simply falls
silent; its row is purged a day later. The count is what the replicas said, not a probe:
a replica that cannot reach the database is not seen, which is also what it is worth.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

import taskgate
from taskgate.db.models import Replica, utcnow
from taskgate.db.upsert import upsert

ANNOUNCE_SECONDS = 10.0
SEEN_WITHIN = timedelta(seconds=3 * ANNOUNCE_SECONDS)
FORGOTTEN_AFTER = timedelta(days=1)


@dataclass(frozen=True)
class ThisReplica:
    """This process, as it announces itself."""

    replica_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    started_at: datetime = field(default_factory=utcnow)


async def announce(session: AsyncSession, replica: ThisReplica) -> None:
    """Record that ``replica`` is alive now."""
    values = {
        "replica_id": replica.replica_id, "hostname": replica.hostname[:255],
        "pid": replica.pid, "version": taskgate.__version__[:50],
        "started_at": replica.started_at, "last_seen_at": utcnow(),
    }
    await session.execute(upsert(session, Replica, values, conflict=["replica_id"],
                                 update=["last_seen_at"]))
    await session.commit()


async def seen(session: AsyncSession) -> Sequence[Replica]:
    """The replicas that announced themselves within ``SEEN_WITHIN``, by start time."""
    found = await session.execute(
        select(Replica).where(Replica.last_seen_at >= utcnow() - SEEN_WITHIN)
        .order_by(Replica.started_at, Replica.replica_id)
    )
    return found.scalars().all()


async def purge(session: AsyncSession) -> int:
    """Forget the replicas silent for ``FORGOTTEN_AFTER``; how many."""
    deleted = await session.execute(
        delete(Replica).where(Replica.last_seen_at < utcnow() - FORGOTTEN_AFTER)
    )
    await session.commit()
    return int(deleted.rowcount or 0)
