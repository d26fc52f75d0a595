"""A database error in the middle of a request's transaction: the caller gets a clean
error and the database has none of the request's writes.

The fault is injected into the real engine of a real server (uvicorn on 127.0.0.1): a
``before_cursor_execute`` listener raises the driver's own OperationalError for one chosen
statement, after the request's earlier statements in the same transaction have run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from sqlalchemy import event, func, select

from taskgate.db.models import TaskReschedule, UsedWorkloadToken, XCom
from tests.support.api import BEAT_BODY, RUN_BODY, bearer, gauge
from tests.support.database import fresh_ti

pytestmark = pytest.mark.integration


class Fault:
    """Fails every statement that starts with ``prefix``; counts the statements run."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.upper()
        self.failed = 0
        self.before: list[str] = []  # statements of the failing request that ran first

    def __call__(self, conn, cursor, statement, parameters, context, executemany) -> None:
        words = statement.split()
        if " ".join(words).upper().startswith(self.prefix):
            self.failed += 1
            raise conn.dialect.loaded_dbapi.OperationalError("injected fault")
        if not self.failed:
            # "INSERT used_workload_tokens", "UPDATE task_instances", "SELECT ..."
            target = words[2] if words[0].upper() in ("INSERT", "DELETE") else words[1]
            self.before.append(f"{words[0].upper()} {target}")


@contextmanager
def failing(engine, prefix: str) -> Iterator[Fault]:
    fault = Fault(prefix)
    event.listen(engine.sync_engine, "before_cursor_execute", fault)
    try:
        yield fault
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", fault)
    assert fault.failed, f"no statement started with {prefix!r}"


def assert_clean_failure(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["detail"]["reason"] == "database_unavailable"


async def count(runtime, stmt) -> int:
    async with runtime.sessionmaker() as session:
        return (await session.execute(stmt)).scalar_one()


async def test_run_fails_between_spending_the_token_and_the_transition(live_server, factory, runtime):
    ti = await factory.queued_ti()
    jti = jwt.decode(ti.workload_token, options={"verify_signature": False})["jti"]
    spent = select(func.count()).select_from(UsedWorkloadToken).where(UsedWorkloadToken.jti == jti)
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        run = f"/execution/task-instances/{ti.id}/run"
        with failing(live_server.runtime.engine, "UPDATE task_instances") as fault:
            refused = await http.patch(run, json=RUN_BODY, headers=bearer(ti.workload_token))
        assert_clean_failure(refused)
        assert "INSERT used_workload_tokens" in fault.before  # the first write had run
        assert (await fresh_ti(runtime, ti.id)).state == "queued"
        assert await count(runtime, spent) == 0  # ... and was rolled back with the rest
        assert gauge((await http.get("/metrics")).text, "taskgate_db_pool_checked_out") == 0

        # Nothing was spent: the same workload token starts the TI now.
        started = await http.patch(run, json=RUN_BODY, headers=bearer(ti.workload_token))
        assert started.status_code == 200, started.text
        assert (await fresh_ti(runtime, ti.id)).state == "running"
        assert await count(runtime, spent) == 1


async def test_new_try_fails_while_clearing_the_previous_tries_xcoms(live_server, factory, runtime):
    ti = await factory.queued_ti(max_tries=2)
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution", timeout=10) as http:
        run = f"/task-instances/{ti.id}/run"
        first = await http.patch(run, json=RUN_BODY, headers=bearer(ti.workload_token))
        token = bearer(first.headers["Refreshed-API-Token"])
        xcom = f"/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/return_value"
        assert (await http.post(xcom, json={"try": 1}, headers=token)).status_code == 201
        retry = {"state": "up_for_retry", "end_date": "2026-01-01T00:05:00Z"}
        assert (await http.patch(f"/task-instances/{ti.id}/state", json=retry, headers=token)).status_code == 204

        second = await runtime.lifecycle.queue(ti.id)
        with failing(live_server.runtime.engine, "DELETE FROM xcoms") as fault:
            refused = await http.patch(run, json=RUN_BODY, headers=bearer(second.workload_token))
        assert_clean_failure(refused)
        assert {"INSERT used_workload_tokens", "UPDATE task_instances"} <= set(fault.before)
        row = await fresh_ti(runtime, ti.id)
        assert (row.state, row.try_number) == ("queued", 2)
        assert await count(runtime, select(func.count()).select_from(XCom)) == 1

        started = await http.patch(run, json=RUN_BODY, headers=bearer(second.workload_token))
        assert started.status_code == 200, started.text
        assert started.json()["xcom_keys_to_clear"] == ["return_value"]
        assert await count(runtime, select(func.count()).select_from(XCom)) == 0


async def test_reschedule_report_fails_while_recording_the_reschedule(live_server, factory, runtime):
    ti = await factory.queued_ti()
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution", timeout=10) as http:
        first = await http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(ti.workload_token))
        token = bearer(first.headers["Refreshed-API-Token"])
        now = datetime.now(UTC)
        body = {"state": "up_for_reschedule", "end_date": now.isoformat(),
                "reschedule_date": (now + timedelta(minutes=5)).isoformat()}
        state = f"/task-instances/{ti.id}/state"
        with failing(live_server.runtime.engine, "INSERT INTO task_reschedules") as fault:
            refused = await http.patch(state, json=body, headers=token)
        assert_clean_failure(refused)
        assert "UPDATE task_instances" in fault.before
        row = await fresh_ti(runtime, ti.id)
        assert (row.state, row.end_date) == ("running", None)
        assert await count(runtime, select(func.count()).select_from(TaskReschedule)) == 0

        # The TI is still the worker's: it heartbeats, and the repeated report goes through.
        beat = await http.put(f"/task-instances/{ti.id}/heartbeat", json=BEAT_BODY, headers=token)
        assert beat.status_code == 204
        assert (await http.patch(state, json=body, headers=token)).status_code == 204
        assert (await fresh_ti(runtime, ti.id)).state == "up_for_reschedule"
        assert await count(runtime, select(func.count()).select_from(TaskReschedule)) == 1
