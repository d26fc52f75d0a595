"""DPoP proof replay (RFC 9449 §11.1): a proof is accepted once, on every replica.

``taskgate.tokens.dpop.verify_proof`` checks one proof and leaves replay to its caller:
the same proof sent again, while its ``iat`` is still within the window, must be
refused. Every replica has to know what every other one accepted, so the proofs used
are recorded in the database they share. ``first_use`` records a proof and says whether
this was its first use; the record *is* the answer, so no two requests can both be told
yes: ``INSERT ... ON CONFLICT (proof_id) DO NOTHING`` inserts a row for the first and
none for any other (on PostgreSQL an insert racing an uncommitted one waits for its
outcome, then inserts nothing if it committed).

A record's key is the hex SHA-256 of the proof key's thumbprint and the ``jti``: one
client cannot spend another's ``jti`` in advance, and the table holds no string a client
chose. It is kept until ``expires_at``, which the caller computes as the last moment the
proof could still be accepted; ``purge`` deletes the records past it.

It runs on every DPoP-bound request, the heartbeat included, so it goes through the
group-commit writer as the heartbeat does (``taskgate.db.group_commit``): one statement
sent on the driver connection, and on PostgreSQL the records of one turn of the event
loop in one transaction, as one statement (``INSERT ... SELECT FROM unnest(...)``). A database error propagates (the caller answers 503): a proof
that could not be recorded is never taken as a first use.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from taskgate.db.direct import DirectStatement, parameter_sets
from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import DPoPProofUse, utcnow
from taskgate.db.upsert import dialect_insert
from taskgate.tokens.claims import JKT

_USES = DPoPProofUse.__table__

_RECORD: dict[str, DirectStatement] = {}  # per dialect: ON CONFLICT is each one's own


def proof_id(jkt: str, jti: str) -> str:
    """The key of the record of proof ``jti`` signed with the key whose thumbprint is
    ``jkt``: hex SHA-256 of ``jkt:jti``. A thumbprint is base64url, without ``:``, so no
    two pairs hash the same string."""
    if not JKT.fullmatch(jkt):
        raise ValueError("jkt is not a JWK SHA-256 thumbprint")
    # surrogatepass: a JSON string may hold a lone surrogate, and it is still one jti.
    return hashlib.sha256(f"{jkt}:{jti}".encode("utf-8", "surrogatepass")).hexdigest()


def _record(dialect: str) -> DirectStatement:
    found = _RECORD.get(dialect)
    if found is None:
        insert = dialect_insert(dialect)
        found = _RECORD[dialect] = DirectStatement(
            insert(_USES)
            .values(
                proof_id=bindparam("proof_id", type_=_USES.c.proof_id.type),
                expires_at=bindparam("expires_at", type_=_USES.c.expires_at.type),
            )
            .on_conflict_do_nothing(index_elements=[_USES.c.proof_id]),
            many=_record_many(insert) if dialect == "postgresql" else None,
            many_key="proof_id",
            lock_order="proof_id",
        )
    return found


def _record_many(insert: Callable[..., Any]) -> Executable:
    """The records of a whole batch in one statement (PostgreSQL): the sets come from
    ``parameter_sets``; the statement returns the position of each set it inserted (the
    sets of one run name distinct proofs, see ``many_key``)."""
    sets = parameter_sets({"proof_id": _USES.c.proof_id.type,
                           "expires_at": _USES.c.expires_at.type})
    numbered = select(sets.c.proof_id, sets.c.expires_at, sets.c.n).cte("numbered")
    inserted = (
        insert(_USES)
        .from_select(["proof_id", "expires_at"],
                     select(numbered.c.proof_id, numbered.c.expires_at))
        .on_conflict_do_nothing(index_elements=[_USES.c.proof_id])
        .returning(_USES.c.proof_id)
        .cte("inserted")
    )
    return select(numbered.c.n).join_from(
        numbered, inserted, inserted.c.proof_id == numbered.c.proof_id
    )


async def first_use(writes: GroupCommit, *, jkt: str, jti: str, expires_at: datetime) -> bool:
    """Record the proof ``jti`` of the key ``jkt`` (kept until ``expires_at``, an aware
    datetime); True if this is its first use, False if it was recorded before: a replay.

    Returns once the record is committed; raises the database's error if it cannot be
    (the request must then be refused). ``expires_at`` must not be earlier than the last
    moment any replica could still accept the proof: mind that ``DPoPProof.iat`` is
    truncated to a second, and leave a margin for the replicas' clocks."""
    params = {"proof_id": proof_id(jkt, jti), "expires_at": expires_at}
    return await writes.rowcount(_record(writes.engine.dialect.name), params) == 1


async def purge(session: AsyncSession) -> int:
    """Delete the records of proofs past their ``expires_at``; how many."""
    deleted = await session.execute(delete(DPoPProofUse).where(DPoPProofUse.expires_at < utcnow()))
    await session.commit()
    return int(deleted.rowcount or 0)
