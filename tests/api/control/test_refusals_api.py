"""The refusal log end to end, in-process: the Execution API refuses requests, each is
recorded (route template, reason, the TI its token named; never the token or the path),
and the control API answers them by reason, by route and newest first, within the
operator's teams, on both backends."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from taskgate.db.models import RefusalRecord
from taskgate.services import refusal_log
from taskgate.services.operators import Role
from tests.support.api import BEAT_BODY, bearer

REFUSALS = "/control/v1/refusals"
HEARTBEAT = "/execution/task-instances/{ti}/heartbeat"
TEMPLATE = "/execution/task-instances/{task_instance_id}/heartbeat"


async def test_refusals_are_recorded_and_summarised(client, runtime, factory, operator_key):
    ti, token = await factory.running_ti(client, team="blue")
    other, _ = await factory.running_ti(client, dag_id="other", team="red")
    garbage = await client.put(HEARTBEAT.format(ti=ti.id), json=BEAT_BODY,
                               headers=bearer("not-a-token"))
    assert garbage.status_code == 403
    stolen = await client.put(HEARTBEAT.format(ti=other.id), json=BEAT_BODY, headers=bearer(token))
    assert stolen.status_code == 403  # this TI's token, for another TI
    await client.post(f"/control/v1/task-instances/{ti.id}/revoke-tokens",
                      headers=await operator_key(Role.OPERATOR))
    revoked = await client.put(HEARTBEAT.format(ti=ti.id), json=BEAT_BODY, headers=bearer(token))
    assert revoked.status_code in (401, 403, 409)
    await runtime.refusals.flush()

    everything = (await client.get(REFUSALS, headers=await operator_key(Role.READER))).json()
    assert everything["total"] == 3
    reasons = {r["reason"]: r["count"] for r in everything["by_reason"]}
    assert sum(reasons.values()) == 3 and garbage.headers["Taskgate-Reason"] in reasons
    assert reasons[stolen.headers["Taskgate-Reason"]] >= 1
    assert everything["by_route"] == [{"method": "PUT", "route": TEMPLATE, "count": 3}]
    newest = everything["latest"]
    assert [r["reason"] for r in newest] == [revoked.headers["Taskgate-Reason"],
                                            stolen.headers["Taskgate-Reason"],
                                            garbage.headers["Taskgate-Reason"]]
    assert newest[0]["ti_id"] == str(ti.id) and newest[0]["dag_id"] == "dag"
    assert newest[1]["ti_id"] == str(ti.id)  # the TI the token named, not the one attacked
    assert newest[2]["ti_id"] is None  # no token was read
    assert all(r["route"] == TEMPLATE and r["method"] == "PUT" for r in newest)
    text = str(everything)
    assert token not in text and "not-a-token" not in text and str(other.id) not in text

    # One TI's refusals; an operator of a team sees its TIs' only.
    of_ti = (await client.get(f"{REFUSALS}?ti_id={ti.id}",
                              headers=await operator_key(Role.READER))).json()
    assert of_ti["total"] == 2
    blue = (await client.get(REFUSALS, headers=await operator_key(Role.READER, "blue"))).json()
    assert blue["total"] == 2 and all(r["ti_id"] == str(ti.id) for r in blue["latest"])
    red = (await client.get(REFUSALS, headers=await operator_key(Role.READER, "red"))).json()
    assert red == {**red, "total": 0, "by_reason": [], "by_route": [], "latest": []}


async def test_the_window_and_the_purge(client, runtime, operator_key):
    for _ in range(3):
        await client.get("/execution/variables/x", headers=bearer("nope"))
    await runtime.refusals.flush()
    async with runtime.sessionmaker() as session:
        first = (await session.execute(select(RefusalRecord.id).order_by(RefusalRecord.id))).scalar()
        await session.execute(update(RefusalRecord).where(RefusalRecord.id == first).values(
            at=datetime.now(UTC) - timedelta(hours=2)))
        await session.commit()
    reader = await operator_key(Role.READER)
    assert (await client.get(f"{REFUSALS}?minutes=60", headers=reader)).json()["total"] == 2
    assert (await client.get(f"{REFUSALS}?minutes=180", headers=reader)).json()["total"] == 3
    async with runtime.sessionmaker() as session:
        assert await refusal_log.purge(session, timedelta(hours=1)) == 1
    assert (await client.get(f"{REFUSALS}?minutes=180", headers=reader)).json()["total"] == 2
    assert (await client.get(f"{REFUSALS}?minutes=0", headers=reader)).status_code == 422


async def test_a_flood_is_bounded_and_never_waits_for_the_database(runtime, monkeypatch):
    monkeypatch.setattr(refusal_log, "MAX_PENDING", 5)
    log = runtime.refusals
    for _ in range(8):  # noted at once: no await between them
        log.note(method="GET", route="/r", status=403, reason="invalid_token", ti_id=None)
    assert log.dropped == 3
    await log.flush()
    async with runtime.sessionmaker() as session:
        count = len((await session.execute(select(RefusalRecord))).all())
    assert count == 5


async def test_a_record_that_cannot_be_written_is_dropped_not_raised(runtime):
    async with runtime.engine.begin() as conn:
        await conn.run_sync(RefusalRecord.__table__.drop)
    log = runtime.refusals
    log.note(method="GET", route="/r", status=403, reason="invalid_token", ti_id=None)
    await asyncio.wait_for(log.flush(), 10)
    assert log.dropped == 1
