"""The read audit over the Execution API: every task read of a variable or connection is
recorded with its outcome, try and host, never its value; a read that cannot be recorded
is refused (503), and recording can be turned off."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
from sqlalchemy import select, text, update

from taskgate.api.app import create_app
from taskgate.db.models import ReadAudit, utcnow
from taskgate.runtime import Runtime
from taskgate.services import connections, declared_access, read_audit, variables
from taskgate.services.declared_access import Allowance
from tests.support.api import bearer

SECRET = "s3cret-value-8842"


async def _seed(runtime: Runtime) -> None:
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "shared", SECRET, team="data")
        await variables.put(session, runtime.secrets, "theirs", SECRET, team="ml")
        await connections.put(
            session, runtime.secrets, "wh", connections.parse_uri(f"postgres://u:{SECRET}@db/x"),
            team="data",
        )


async def _records(runtime: Runtime, **filters) -> list[ReadAudit]:
    async with runtime.sessionmaker() as session:
        return list(await read_audit.reads(session, **filters))


async def test_every_read_is_recorded_with_its_outcome_and_never_its_value(client, runtime, factory):
    await _seed(runtime)
    ti, token = await factory.running_ti(client, dag_id="etl", team="data")
    auth = bearer(token)
    answers = [
        (await client.get("/execution/variables/shared", headers=auth)).status_code,
        (await client.get("/execution/variables/missing", headers=auth)).status_code,
        (await client.get("/execution/variables/theirs", headers=auth)).status_code,
        (await client.get("/execution/connections/wh", headers=auth)).status_code,
    ]
    assert answers == [200, 404, 403, 200]
    async with runtime.sessionmaker() as session:
        await declared_access.declare(session, "etl", Allowance(variables=("shared",)))
    runtime.standing.forget(ti.id)
    assert (await client.get("/execution/connections/wh", headers=auth)).status_code == 403

    found = await _records(runtime, ti_id=ti.id)
    assert [(r.kind, r.key, r.outcome, r.reason) for r in reversed(found)] == [
        ("variable", "shared", "allowed", None),
        ("variable", "missing", "not_found", None),
        ("variable", "theirs", "refused", "other_team"),
        ("connection", "wh", "allowed", None),
        ("connection", "wh", "refused", "not_declared"),
    ]
    first = found[-1]
    assert (first.dag_id, first.task_id, first.map_index, first.try_number, first.team) == (
        "etl", "task", -1, 1, "data")
    assert first.hostname == "worker-1"  # the host that started the TI (RUN_BODY)
    async with runtime.sessionmaker() as session:
        stored = (await session.execute(text("SELECT * FROM read_audit"))).all()
    assert stored and all(SECRET not in str(row) for row in stored)
    assert [r.id for r in await _records(runtime, key="theirs")] == [found[2].id]
    assert await _records(runtime, dag_id="other") == []


async def test_concurrent_reads_are_each_recorded(client, runtime, factory):
    await _seed(runtime)
    ti, token = await factory.running_ti(client, dag_id="etl", team="data")
    answers = await asyncio.gather(*(
        client.get("/execution/variables/shared", headers=bearer(token)) for _ in range(40)
    ))
    assert {a.status_code for a in answers} == {200}
    assert len(await _records(runtime, ti_id=ti.id)) == 40


async def test_a_read_that_cannot_be_recorded_is_refused(client, runtime, factory):
    await _seed(runtime)
    _ti, token = await factory.running_ti(client, dag_id="etl", team="data")
    async with runtime.sessionmaker() as session:
        await session.execute(text("ALTER TABLE read_audit RENAME TO read_audit_away"))
        await session.commit()
    refused = await client.get("/execution/variables/shared", headers=bearer(token))
    # The record's insert fails in the database (db.direct: a database error), so the
    # read is answered as a database fault, with Retry-After.
    assert (refused.status_code, refused.headers["Taskgate-Reason"]) == (503, "database_unavailable")
    assert "Retry-After" in refused.headers
    assert SECRET not in refused.text
    assert (await client.get("/execution/connections/wh", headers=bearer(token))).status_code == 503
    async with runtime.sessionmaker() as session:
        await session.execute(text("ALTER TABLE read_audit_away RENAME TO read_audit"))
        await session.commit()
    assert (await client.get("/execution/variables/shared", headers=bearer(token))).status_code == 200


async def test_recording_can_be_turned_off(settings, runtime, factory):
    await _seed(runtime)
    quiet = Runtime.from_settings(settings.model_copy(update={"read_audit": False}))
    try:
        transport = httpx.ASGITransport(app=create_app(quiet))
        async with httpx.AsyncClient(transport=transport, base_url="http://taskgate") as client:
            ti, token = await factory.running_ti(client, dag_id="etl", team="data")
            assert (await client.get("/execution/variables/shared", headers=bearer(token))).status_code == 200
    finally:
        await quiet.aclose()
    assert await _records(runtime, ti_id=ti.id) == []


async def test_old_records_are_purged(client, runtime, factory):
    await _seed(runtime)
    ti, token = await factory.running_ti(client, dag_id="etl", team="data")
    for _ in range(3):
        await client.get("/execution/variables/shared", headers=bearer(token))
    async with runtime.sessionmaker() as session:
        oldest = min(r.id for r in await read_audit.reads(session))
        long_ago = utcnow() - timedelta(days=runtime.settings.read_audit_retention_days + 1)
        await session.execute(update(ReadAudit).where(ReadAudit.id == oldest).values(at=long_ago))
        await session.commit()
    assert await runtime.purge("read_audit") == 1
    async with runtime.sessionmaker() as session:
        left = (await session.execute(select(ReadAudit.id))).scalars().all()
    assert len(left) == 2 and oldest not in left
