"""``taskgate.control``: both clients against a real server on 127.0.0.1, with real
operator keys: typed answers that keep the server's JSON, and one error class per kind
of refusal."""

from __future__ import annotations

import uuid

import pytest

from taskgate.control import (
    NO_RETRIES,
    AccessDenied,
    AsyncControlClient,
    Conflict,
    ControlClient,
    CreatedRun,
    Dag,
    InvalidRequest,
    NotFound,
    OperatorInfo,
    Queued,
    ServerUnavailable,
    TaskInstance,
    TokenRejected,
    control_url,
)
from taskgate.services import operators
from taskgate.services.operators import Role
from tests.support.processes import free_port

pytestmark = pytest.mark.integration


async def _key(runtime, name: str, role: Role, *teams: str) -> str:
    async with runtime.sessionmaker() as session:
        return (await operators.add_operator(session, name, role, teams)).key


def test_control_url() -> None:
    assert control_url("https://tg.example/") == "https://tg.example/control/v1"
    assert control_url("http://h:8080/control/v1/") == "http://h:8080/control/v1"
    with pytest.raises(ValueError):
        control_url("tg.example")


async def test_sync_client_every_operation(live_server, runtime) -> None:
    key = await _key(runtime, "orchestrator", Role.ADMIN)
    with ControlClient(live_server.url, key) as control:
        assert control.add_dag("etl") == Dag("etl", None, None)
        assert control.add_dag("etl").raw == {"dag_id": "etl", "team": None, "token_binding": None}
        assert control.add_dag("etl", token_binding="dpop").token_binding == "dpop"
        assert control.add_dag("etl").token_binding == "dpop"  # kept when not given
        assert [d.dag_id for d in control.list_dags()] == ["etl"]

        run = control.create_run("etl", "r1", ["extract", "load"], max_tries=2,
                                 mapped={"load": 2})
        assert isinstance(run, CreatedRun) and run.raw["run_id"] == "r1"
        assert [(t.task_id, t.map_index, t.state) for t in run.task_instances] == [
            ("extract", -1, "scheduled"), ("load", 0, "scheduled"), ("load", 1, "scheduled")
        ]
        assert all(isinstance(t.id, uuid.UUID) for t in run.task_instances)

        tis = control.list_task_instances(dag_id="etl")
        assert [ti.id for ti in tis] == [t.id for t in run.task_instances]
        assert isinstance(tis[0], TaskInstance) and tis[0].max_tries == 2
        assert [ti.id for ti in control.list_task_instances(dag_id="etl", limit=1, offset=1)] == [
            run.task_instances[1].id
        ]
        extract = run.task_instances[0].id

        queued = control.queue(extract)
        assert isinstance(queued, Queued) and queued.ti_id == extract
        assert queued.ti is not None and (queued.ti.state, queued.ti.try_number) == ("queued", 1)
        assert queued.ti.queued_at is not None and queued.raw["token"] == queued.token
        shown = control.get_task_instance(str(extract))
        assert (shown.state, shown.workload_tokens_spent) == ("queued", 0)
        assert shown.tokens_not_before is not None

        airflow = control.queue(run.task_instances[1].id, "airflow", dag_rel_path="etl.py",
                                bundle_name="dags-folder")
        assert airflow.ti is None and airflow.raw["type"] == "ExecuteTask"
        assert airflow.raw["bundle_info"] == {"name": "dags-folder", "version": None}

        revoked = control.revoke_tokens(extract)
        assert revoked.ti_id == extract and revoked.tokens_not_before > 0

        variable = control.put_variable("greeting", "hello", description="says hi")
        assert (variable.key, variable.value, variable.description) == ("greeting", "hello", "says hi")
        assert control.get_variable("greeting").value == "hello"
        assert [v.key for v in control.list_variables()] == ["greeting"]
        control.delete_variable("greeting")
        assert control.list_variables() == []

        conn = control.put_connection("wh", "postgres://etl:secret@db:5432/dw")
        assert (conn.conn_type, conn.host, conn.port, conn.password) == ("postgres", "db", 5432, "secret")
        by_fields = control.put_connection("api", conn_type="http", host="api.internal")
        assert (by_fields.conn_type, by_fields.password) == ("http", None)
        assert control.get_connection("wh").login == "etl"
        assert sorted(c.conn_id for c in control.list_connections()) == ["api", "wh"]
        control.delete_connection("api")

        assert control.list_xcoms(dag_id="etl") == []

        made = control.add_operator("watcher", "reader", ["etl"])
        assert isinstance(made, OperatorInfo) and made.key and made.key.startswith("tgk_")
        assert made.teams == ("etl",) and made.revoked_at is None
        assert {o.name for o in control.list_operators()} == {"orchestrator", "watcher"}
        assert all(o.key is None for o in control.list_operators())
        assert control.revoke_operator("watcher").revoked_at is not None


async def test_async_client(live_server, runtime) -> None:
    key = await _key(runtime, "async", Role.OPERATOR)
    admin = await _key(runtime, "admin", Role.ADMIN)
    async with AsyncControlClient(live_server.url, admin) as control:
        await control.add_dag("etl")
        await control.put_variable("v", "1")
    async with AsyncControlClient(live_server.url, key) as control:
        assert [d.dag_id for d in await control.list_dags()] == ["etl"]
        run = await control.create_run("etl", "r1", ["t"])
        queued = await control.queue(run.task_instances[0].id)
        assert queued.ti is not None and queued.ti.state == "queued"
        assert (await control.get_task_instance(queued.ti_id)).state == "queued"
        assert (await control.get_variable("v")).value is None  # values are for admins
        with pytest.raises(NotFound):
            await control.get_xcom("etl", "r1", "t")


async def test_errors(live_server, runtime, factory) -> None:
    reader = await _key(runtime, "reader", Role.READER)
    operator = await _key(runtime, "operator", Role.OPERATOR)
    with ControlClient(live_server.url, reader) as control:
        with pytest.raises(AccessDenied) as refused:
            control.add_dag("etl")
        assert (refused.value.status, refused.value.reason) == (403, "role_required")
        assert "admin" in refused.value.message and "reader" in refused.value.message

        with pytest.raises(NotFound) as missing:
            control.get_task_instance(uuid.uuid4())
        assert missing.value.status == 404

        with pytest.raises(InvalidRequest) as bad:
            control.list_task_instances(limit=0)
        assert (bad.value.status, bad.value.reason) == (422, "invalid_input")

    running = await factory.running_row()
    with ControlClient(live_server.url, operator) as control:
        with pytest.raises(Conflict) as conflict:
            control.queue(running.id)
        assert conflict.value.status == 409 and "running" in conflict.value.message

    with ControlClient(live_server.url, "tgk_unknown_key") as control:
        with pytest.raises(TokenRejected) as unknown:
            control.list_dags()
        assert (unknown.value.status, unknown.value.reason) == (401, "invalid_key")

    async with AsyncControlClient(live_server.url, reader) as control:
        with pytest.raises(AccessDenied):
            await control.create_run("etl", "r", ["t"])


def test_no_server() -> None:
    with ControlClient(f"http://127.0.0.1:{free_port()}", "tgk_x", retry=NO_RETRIES) as control:
        with pytest.raises(ServerUnavailable) as down:
            control.list_dags()
    assert down.value.status is None and down.value.reason == "ConnectError"
