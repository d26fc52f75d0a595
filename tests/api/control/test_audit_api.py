"""GET /control/v1/audit/reads: readers see the recorded reads (never values), filtered,
and an operator with teams only those of its teams' DAGs."""

from __future__ import annotations

from taskgate.services import variables
from taskgate.services.operators import Role
from tests.support.api import bearer

READS = "/control/v1/audit/reads"


async def test_readers_see_the_reads_of_their_teams(client, runtime, factory, operator_key) -> None:
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "k", "value-1234", team="data")
        await variables.put(session, runtime.secrets, "m", "value-1234", team="ml")
    data_ti, data_token = await factory.running_ti(client, dag_id="etl", team="data")
    ml_ti, ml_token = await factory.running_ti(client, dag_id="train", team="ml")
    await client.get("/execution/variables/k", headers=bearer(data_token))
    await client.get("/execution/variables/m", headers=bearer(data_token))
    await client.get("/execution/variables/m", headers=bearer(ml_token))

    everyone = await client.get(READS, headers=await operator_key(Role.READER))
    assert everyone.status_code == 200
    rows = everyone.json()
    assert [(r["dag_id"], r["key"], r["outcome"], r["reason"]) for r in rows] == [
        ("train", "m", "allowed", None), ("etl", "m", "refused", "other_team"),
        ("etl", "k", "allowed", None),
    ]
    assert "value-1234" not in everyone.text
    assert set(rows[0]) == {"id", "at", "ti_id", "dag_id", "task_id", "map_index",
                            "try_number", "kind", "key", "outcome", "reason", "hostname"}

    ml_reader = await operator_key(Role.READER, "ml")
    scoped = (await client.get(READS, headers=ml_reader)).json()
    assert [r["ti_id"] for r in scoped] == [str(ml_ti.id)]
    by_ti = await client.get(READS, params={"ti_id": str(data_ti.id), "key": "k"},
                             headers=await operator_key(Role.READER))
    assert [r["key"] for r in by_ti.json()] == ["k"]
    later = await client.get(READS, params={"since": "2999-01-01T00:00:00Z"},
                             headers=await operator_key(Role.READER))
    assert later.json() == []
    bad = await client.get(READS, params={"since": "yesterday"}, headers=await operator_key(Role.READER))
    assert bad.status_code == 422
    assert (await client.get(READS)).status_code == 401
