"""DPoP proof replay (``taskgate.services.dpop_replay``), on each backend, with the fast
paths on and off: a proof is accepted once, however many requests race to use it, on one
replica or two; a batch answers each caller for its own proof; a database error is never
a first use; the purge keeps the records of proofs that could still be accepted."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from taskgate.db import migrate
from taskgate.db.group_commit import GroupCommit
from taskgate.db.models import DPoPProofUse
from taskgate.db.session import EngineOptions, create_engine
from taskgate.services import dpop_replay
from taskgate.services.dpop_replay import first_use, proof_id

ALICE, BOB = "A" * 43, "b-_" * 14 + "B"  # thumbprints: 43 base64url characters
LATER = datetime(2099, 1, 1, tzinfo=UTC)

FAST_OR_PUBLIC = pytest.mark.parametrize(
    "fast", [pytest.param(True, marks=pytest.mark.fast_paths), False], ids=["fast", "public"]
)


async def _engine(settings, fast: bool) -> AsyncEngine:  # type: ignore[no-untyped-def]
    engine = create_engine(settings.effective_database_url, EngineOptions(fast_paths=fast))
    await migrate.upgrade(engine)  # the embedded database; PostgreSQL's is migrated already
    return engine


@pytest.fixture
async def engine(settings, fast: bool) -> AsyncIterator[AsyncEngine]:  # type: ignore[no-untyped-def]
    engine = await _engine(settings, fast)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _use(writes: GroupCommit, jkt: str, jti: str, expires_at: datetime = LATER) -> bool:
    return await first_use(writes, jkt=jkt, jti=jti, expires_at=expires_at)


async def _recorded(engine: AsyncEngine) -> dict[str, datetime]:
    async with AsyncSession(engine) as session:
        rows = await session.execute(select(DPoPProofUse.proof_id, DPoPProofUse.expires_at))
        return dict(rows.all())


@FAST_OR_PUBLIC
async def test_a_proof_is_accepted_once_and_a_jti_is_its_keys_own(engine):
    writes = GroupCommit(engine)
    expires_at = datetime(2099, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    assert await _use(writes, ALICE, "jti-1", expires_at) is True
    assert await _use(writes, ALICE, "jti-1") is False  # the replay
    assert await _use(writes, BOB, "jti-1") is True  # another key's proof
    assert await _use(writes, ALICE, "jti-2") is True
    assert await _use(writes, BOB, "jti-1") is False
    await writes.aclose()
    # Keyed by the hash of thumbprint and jti, never either one; the expiry as the ORM reads it.
    recorded = await _recorded(engine)
    key = hashlib.sha256(f"{ALICE}:jti-1".encode()).hexdigest()
    assert proof_id(ALICE, "jti-1") == key
    assert recorded[key] == expires_at
    assert set(recorded) == {key, proof_id(BOB, "jti-1"), proof_id(ALICE, "jti-2")}


def test_the_key_is_a_hash_of_a_thumbprint_and_a_jti():
    assert len(proof_id(ALICE, "j")) == 64
    assert proof_id(ALICE, "j") != proof_id(BOB, "j") != proof_id(ALICE, "k")
    assert proof_id(ALICE, "\ud800") != proof_id(ALICE, "\ud801")  # lone surrogates hash too
    for not_a_thumbprint in ("", "A" * 42, "A" * 42 + ":", "A" * 44):
        with pytest.raises(ValueError, match="thumbprint"):
            proof_id(not_a_thumbprint, "j")


@FAST_OR_PUBLIC
@pytest.mark.parametrize("gather", [True, False], ids=["gathered", "alone"])
async def test_of_many_concurrent_uses_of_one_proof_exactly_one_is_accepted(engine, gather):
    writes = GroupCommit(engine, gather=gather)
    for round_ in range(3):
        accepted = await asyncio.wait_for(
            asyncio.gather(*(_use(writes, ALICE, f"raced-{round_}") for _ in range(20))), 10
        )
        assert accepted.count(True) == 1 and accepted.count(False) == 19
    await writes.aclose()


@pytest.fixture
async def replica_engines(settings, fast, database_url) -> AsyncIterator[list[AsyncEngine]]:  # type: ignore[no-untyped-def]
    """Two engines on one PostgreSQL database: two replicas."""
    if database_url is None:
        pytest.skip("the embedded database has one process")
    engines = [await _engine(settings, fast) for _ in range(2)]
    yield engines
    for engine in engines:
        await engine.dispose()


@FAST_OR_PUBLIC
async def test_two_replicas_racing_on_one_proof_accept_it_once(replica_engines):
    # Replicas on their own engines: one gathers its requests, the other writes each one
    # alone, each on its pooled connections (opened first, so the races are close).
    replicas = [GroupCommit(replica_engines[0], gather=True),
                GroupCommit(replica_engines[1], gather=False)]
    for replica in replicas:
        assert await _use(replica, BOB, f"warm-up-{id(replica)}") is True
    for round_ in range(10):
        accepted = await asyncio.wait_for(asyncio.gather(
            *(_use(replica, ALICE, f"raced-{round_}") for _ in range(10) for replica in replicas)
        ), 10)
        assert accepted.count(True) == 1, accepted
    for replica in replicas:
        await replica.aclose()


@FAST_OR_PUBLIC
async def test_replicas_recording_the_same_proofs_in_opposite_orders_never_deadlock(
    replica_engines,
):
    # One batch is one transaction: two replicas' batches inserting the same proofs in
    # opposite orders would each wait for the other's row (PostgreSQL detects the deadlock
    # and fails one batch, every caller of it). A batch is sent in its key order instead.
    replicas = [GroupCommit(engine, gather=True) for engine in replica_engines]
    for round_ in range(30):
        jtis = [f"round-{round_}-{n}" for n in range(8)]
        accepted = await asyncio.wait_for(asyncio.gather(
            *(_use(replicas[0], ALICE, jti) for jti in jtis),
            *(_use(replicas[1], ALICE, jti) for jti in reversed(jtis)),
        ), 10)
        assert accepted.count(True) == len(jtis), accepted
    for replica in replicas:
        await replica.aclose()


@FAST_OR_PUBLIC
async def test_a_batch_of_new_proofs_and_replays_answers_each_caller_for_its_own(engine):
    writes = GroupCommit(engine, gather=True)
    assert [await _use(writes, ALICE, jti) for jti in ("old-1", "old-2")] == [True, True]
    calls = [
        (ALICE, "old-1"),  # replay of an earlier batch
        (ALICE, "new-1"),
        (ALICE, "old-2"),
        (BOB, "old-1"),  # the same jti, another key: new
        (ALICE, "new-1"),  # replay within the batch
        (ALICE, "new-2"),
    ]
    expires_at = datetime(2098, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
    accepted = await asyncio.wait_for(
        asyncio.gather(*(_use(writes, jkt, jti, expires_at) for jkt, jti in calls)), 10
    )
    assert accepted == [False, True, False, True, False, True]
    await writes.aclose()
    recorded = await _recorded(engine)
    assert set(recorded) == {proof_id(jkt, jti) for jkt, jti in calls + [(ALICE, "old-2")]}
    # The batch's own records keep their expiry exactly (on PostgreSQL: one statement).
    assert {recorded[proof_id(jkt, jti)]
            for (jkt, jti), first in zip(calls, accepted, strict=True) if first} == {expires_at}


@FAST_OR_PUBLIC
async def test_a_database_error_is_raised_to_every_caller_never_a_first_use(engine):
    writes = GroupCommit(engine, gather=True)
    assert await _use(writes, ALICE, "before") is True
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE dpop_proof_uses"))
    outcomes = await asyncio.wait_for(asyncio.gather(
        _use(writes, ALICE, "after"), _use(writes, BOB, "after"), return_exceptions=True), 10)
    assert all(isinstance(outcome, OperationalError) for outcome in outcomes), outcomes
    with pytest.raises(OperationalError):
        await _use(GroupCommit(engine, gather=False), ALICE, "alone")
    await writes.aclose()


@FAST_OR_PUBLIC
async def test_purge_deletes_only_the_records_past_their_expiry(engine):
    writes = GroupCommit(engine)
    now = datetime.now(UTC)
    assert await _use(writes, ALICE, "expired", now - timedelta(seconds=1)) is True
    assert await _use(writes, BOB, "expired", now - timedelta(days=1)) is True
    assert await _use(writes, ALICE, "live", now + timedelta(minutes=1)) is True
    async with AsyncSession(engine) as session:
        assert await dpop_replay.purge(session) == 2
    assert set(await _recorded(engine)) == {proof_id(ALICE, "live")}
    assert await _use(writes, ALICE, "live") is False  # still refused
    async with AsyncSession(engine) as session:
        assert await dpop_replay.purge(session) == 0
    await writes.aclose()


def _schema(connection):  # type: ignore[no-untyped-def]
    found = inspect(connection)
    if not found.has_table("dpop_proof_uses"):
        return None
    rowid = None
    if connection.dialect.name == "sqlite":
        sql = connection.execute(text(
            "SELECT sql FROM sqlite_master WHERE name = 'dpop_proof_uses'")).scalar_one()
        rowid = "WITHOUT ROWID" not in sql.upper()
    return {
        "columns": {c["name"]: (type(c["type"]).__name__, c["nullable"])
                    for c in found.get_columns("dpop_proof_uses")},
        "primary key": found.get_pk_constraint("dpop_proof_uses")["constrained_columns"],
        "indexes": [(i["name"], i["column_names"]) for i in found.get_indexes("dpop_proof_uses")],
        "rowid": rowid,
    }


async def _migrate(engine: AsyncEngine, to: str, *, down: bool = False) -> None:
    def run(connection):  # type: ignore[no-untyped-def]
        (command.downgrade if down else command.upgrade)(migrate.alembic_config(connection), to)

    async with engine.begin() as connection:
        await connection.run_sync(run)
    assert await migrate.current_revision(engine) == to


async def test_the_migrations_make_the_table_lean_and_keep_its_records(database_url, tmp_path):
    # PostgreSQL: the fixture made a fresh database and migrated it with migrate.upgrade.
    engine = create_engine(database_url or f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}")
    sqlite = database_url is None
    try:
        await migrate.upgrade(engine)
        await _migrate(engine, "0009", down=True)
        async with engine.connect() as connection:
            as_created = await connection.run_sync(_schema)
        assert as_created["columns"] == {"proof_id": ("VARCHAR", False),
                                         "expires_at": (as_created["columns"]["expires_at"][0],
                                                        False)}
        assert as_created["primary key"] == ["proof_id"]
        assert as_created["indexes"] == [("ix_dpop_proof_uses_expires_at", ["expires_at"])]
        assert as_created["rowid"] is (True if sqlite else None)
        # A proof recorded before the upgrade is still a replay after it.
        async with engine.begin() as connection:
            await connection.execute(
                text("INSERT INTO dpop_proof_uses (proof_id, expires_at) VALUES (:p, :e)"),
                {"p": proof_id(ALICE, "before-the-upgrade"), "e": LATER})

        await _migrate(engine, "0010")
        async with engine.connect() as connection:
            lean = await connection.run_sync(_schema)
        assert lean == {**as_created, "indexes": [], "rowid": False if sqlite else None}
        writes = GroupCommit(engine)
        assert await _use(writes, ALICE, "before-the-upgrade") is False
        assert await _use(writes, ALICE, "after-the-upgrade") is True
        await writes.aclose()

        await _migrate(engine, "0009", down=True)
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema) == as_created
        assert set(await _recorded(engine)) == {proof_id(ALICE, "before-the-upgrade"),
                                                proof_id(ALICE, "after-the-upgrade")}
        await _migrate(engine, "0007", down=True)
        async with engine.connect() as connection:
            assert await connection.run_sync(_schema) is None
    finally:
        await engine.dispose()
