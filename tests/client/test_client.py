"""The client against the real app (in-process ASGI, every security layer on): every
route, typed answers and errors, the token exchange and refresh."""

import asyncio
import subprocess
import sys
import uuid

import httpx
import pytest

from taskgate.client import AccessDenied, Conflict, NotFound, TokenRejected
from taskgate.client.in_process import in_process_client
from taskgate.client.token import TokenHolder
from taskgate.services import connections, control
from taskgate.services.task_instances import get_task_instance
from taskgate.settings import Settings
from taskgate.tokens import TokenType
from taskgate.wire.http import REFRESHED_TOKEN_HEADER as REFRESH_HEADER
from taskgate.wire.task_instances import TIRunContext

HOST = {"hostname": "worker-1", "pid": 4242}
RUN_ID = "manual__2026-01-01T00:00:00+00:00"  # ":" and "+" travel percent-encoded


async def test_every_route(runtime, factory):
    async with runtime.sessionmaker() as session:
        await connections.put(
            session, runtime.secrets, "warehouse", connections.parse_uri("postgres://u:pw@wh:5432/dw")
        )
        await control.add_dag(session, "demo")
        created = await control.create_run(session, "demo", RUN_ID, ["hello", "later"])
    hello, later = created.task_instances
    async with runtime.sessionmaker() as session:
        queued = await runtime.lifecycle.queue(hello.id)
    workload = queued.workload_token

    async with in_process_client(runtime, token=workload) as api:
        assert await api.health() == {"status": "healthy", "database": "ok"}
        context = await api.run(hello.id, unixname="tester", **HOST)
        assert isinstance(context, TIRunContext) and context.dag_run.run_id == RUN_ID
        assert api.token != workload and api.token_refreshes == 0  # exchanged, not refreshed

        await api.heartbeat(hello.id, **HOST)
        await api.set_rendered_fields(hello.id, {"cmd": "echo hi"})
        await api.set_rendered_map_index(hello.id, "first")
        await api.skip_downstream(hello.id, ["later"])
        assert (await api.previous_successful_dagrun(hello.id)).start_date is None

        assert (await api.get_connection("warehouse")).host == "wh"
        await api.set_variable("team/a", "v1", description="with a slash")
        assert (await api.get_variable("team/a")).value == "v1"
        assert (await api.variable_keys(prefix="team/")).keys == ["team/a"]
        await api.delete_variable("team/a")
        await api.delete_variable("team/a")  # deleting what is not there is done
        with pytest.raises(NotFound) as missing:
            await api.get_variable("team/a")
        assert missing.value.status == 404 and missing.value.reason == "not_found"

        await api.push_xcom("demo", RUN_ID, "hello", "rows/x", {"n": 3})
        await api.push_xcom("demo", RUN_ID, "hello", "nothing", None)
        assert (await api.get_xcom("demo", RUN_ID, "hello", "rows/x")).value == {"n": 3}
        assert (await api.get_xcom("demo", RUN_ID, "hello", "nothing")).value is None
        assert await api.count_xcoms("demo", RUN_ID, "hello", "rows/x") == 1
        assert await api.get_xcom_item("demo", RUN_ID, "hello", "rows/x", -1) == {"n": 3}
        assert await api.get_xcom_slice("demo", RUN_ID, "hello", "rows/x", start=0) == [{"n": 3}]
        await api.delete_xcom("demo", RUN_ID, "hello", "nothing")
        with pytest.raises(AccessDenied) as denied:
            await api.push_xcom("demo", RUN_ID, "later", "k", 1)
        assert denied.value.reason == "other_task_instance"
        assert denied.value.detail["reason"] == "access_denied"

        await api.finish(hello.id, "success")
        await api.finish(hello.id, "success")  # an identical repeat is accepted
        with pytest.raises(Conflict) as conflict:
            await api.heartbeat(hello.id, **HOST)
        assert conflict.value.reason == "not_running"
        with pytest.raises(TokenRejected) as ended:
            await api.get_variable("anything")
        assert ended.value.reason == "ti_ended"
        assert ended.value.message == "Task instance has ended; its tokens are no longer accepted"

        api.token = workload  # single-use: refused even though the TI was started with it
        with pytest.raises(Conflict) as reused:
            await api.run(hello.id, unixname="tester", **HOST)
        assert reused.value.reason == "workload_token_reused"
        assert reused.value.detail["reason"] == "token_reused"

    async with runtime.sessionmaker() as session:
        assert (await get_task_instance(session, hello.id)).state == "success"
        assert (await get_task_instance(session, later.id)).state == "skipped"


async def test_errors_carry_status_reason_and_correlation_id(runtime, factory):
    ti = await factory.queued_ti()
    async with in_process_client(runtime, token=None) as api:
        with pytest.raises(TokenRejected) as missing:
            await api.heartbeat(ti.id, **HOST)
    assert (missing.value.status, missing.value.reason) == (401, "missing_token")
    assert missing.value.message == "Missing auth token"
    assert len(missing.value.correlation_id) == 32
    async with in_process_client(runtime, token=ti.workload_token) as api:
        with pytest.raises(TokenRejected) as workload:
            await api.heartbeat(ti.id, **HOST)
    assert workload.value.status == 403
    assert workload.value.reason == "token_type_not_allowed"
    assert workload.value.message.startswith("Token type 'workload' not allowed")


@pytest.fixture
def settings(data_dir, database_url):
    # 30 s lifetime, 30 s refresh floor: every answer carries a fresh token.
    return Settings(data_dir=data_dir, database_url=database_url, execution_token_ttl=30)


async def test_fresh_tokens_are_picked_up(runtime, factory):
    ti = await factory.queued_ti()
    async with in_process_client(runtime, token=ti.workload_token) as api:
        await api.run(ti.id, unixname="tester", **HOST)
        tokens = {api.token}
        for _ in range(3):
            await asyncio.sleep(0.01)  # iat has millisecond resolution: tokens differ
            await api.heartbeat(ti.id, **HOST)
            tokens.add(api.token)
        assert api.token_refreshes == 3 and len(tokens) == 4
        await api.finish(ti.id, "success")


def test_import_stays_light():
    """`import taskgate.client` loads the wire models, not the server or the database."""
    code = (
        "import sys, taskgate.client; "
        "heavy = [m for m in ('sqlalchemy', 'taskgate.runtime', 'taskgate.services', "
        "'taskgate.api.app', 'uvicorn') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_racing_refreshes_keep_the_longer_lived_token(runtime):
    issuer = runtime.require_issuer()
    ti = uuid.uuid4()
    workload = issuer.issue(ti, TokenType.WORKLOAD)
    short, long = issuer.issue(ti, ttl=100), issuer.issue(ti, ttl=200)
    holder = TokenHolder(workload)
    holder.pick_up(httpx.Response(200, headers={REFRESH_HEADER: short}))
    assert (holder.current, holder.refreshes) == (short, 0)  # the /run exchange
    holder.pick_up(httpx.Response(204, headers={REFRESH_HEADER: long}))
    holder.pick_up(httpx.Response(204, headers={REFRESH_HEADER: short}))  # arrived late
    assert (holder.current, holder.refreshes) == (long, 1)
