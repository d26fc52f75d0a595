"""An unmodified Airflow Task SDK 1.3 worker runs real DAG tasks against taskgate.

Each scenario creates a run and queued TIs through the taskgate CLI, runs every TI with
the SDK's own ``execute_workload`` entry point, then checks in taskgate the final TI
states, the stored XComs and rendered fields -- and that no request got a 404 or a 5xx.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.interop.conftest import WAREHOUSE_PASSWORD
from tests.interop.harness import TaskgateServer, Worker, queue_airflow, serve

pytestmark = [pytest.mark.interop, pytest.mark.integration]


def create_run(
    server: TaskgateServer, dag_id: str, *tasks: str, max_tries: int = 0, mapped: str | None = None
) -> tuple[str, dict[str, str]]:
    """A run of ``tasks``; its TIs by task id (a mapped TI as ``task[index]``)."""
    server.cli("dags", "add", dag_id)
    run_id = f"run-{uuid.uuid4().hex[:8]}"
    args = ["runs", "create", dag_id, run_id, "--max-tries", str(max_tries), "--json"]
    for task in tasks:
        args += ["--task", task]
    if mapped:
        args += ["--mapped", mapped]
    created = server.cli_json(*args)
    return run_id, {
        ti["task_id"] if ti["map_index"] < 0 else f"{ti['task_id']}[{ti['map_index']}]": ti["id"]
        for ti in created["task_instances"]  # type: ignore[index]
    }


def run_task(server: TaskgateServer, worker: Worker, ti_id: str) -> dict:
    workload = queue_airflow(server, ti_id)
    result = worker.run(server, workload)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workload


def assert_no_bad_answers(server: TaskgateServer, *expected_404: str) -> None:
    """No 5xx, and no 404 but the ``expected_404`` paths."""
    bad = [
        r for r in server.requests()
        if r.status >= 500 or (r.status == 404 and r.path not in expected_404)
    ]
    assert not bad, bad


def xcom(server: TaskgateServer, dag_id: str, run_id: str, task_id: str) -> object:
    return server.cli_json("xcoms", "get", dag_id, run_id, task_id)


def test_task_reads_variable_and_connection_and_downstream_pulls(server, worker):
    run_id, tis = create_run(server, "interop_data", "produce", "consume")
    run_task(server, worker, tis["produce"])
    run_task(server, worker, tis["consume"])

    assert server.ti(tis["produce"])["state"] == "success"
    assert server.ti(tis["consume"])["state"] == "success"
    produced = {"greeting": "hello", "host": "db.internal", "port": 5432}
    assert xcom(server, "interop_data", run_id, "produce") == produced
    assert xcom(server, "interop_data", run_id, "consume") == "hello from db.internal:5432"
    called = {(r.method, r.path.split("/execution/")[-1]) for r in server.requests()}
    assert ("GET", "variables/greeting") in called and ("GET", "connections/warehouse") in called
    assert ("GET", f"xcoms/interop_data/{run_id}/produce/return_value") in called
    assert server.ti(tis["consume"])["rendered_fields"] is not None
    assert_no_bad_answers(server)

    # The read audit has exactly the producer's two reads (the task asks for the
    # connection first), of its first try, from the worker's host; the consumer read
    # nothing but an XCom.
    reads = server.cli_json("audit", "reads", "--ti", tis["produce"], "--json")
    assert [(r["kind"], r["key"], r["outcome"], r["try_number"]) for r in reversed(reads)] == [
        ("connection", "warehouse", "allowed", 1), ("variable", "greeting", "allowed", 1),
    ]
    assert {r["hostname"] for r in reads} == {server.ti(tis["produce"])["hostname"]} != {None}
    assert server.cli_json("audit", "reads", "--ti", tis["consume"], "--json") == []
    # The connection's password is nowhere in the database (stored encrypted) or the log.
    database = b"".join(p.read_bytes() for p in server.log.parent.glob("*.db*"))
    assert database and WAREHOUSE_PASSWORD.encode() not in database
    assert WAREHOUSE_PASSWORD not in server.log.read_text()


def test_mapped_task_and_its_reduction(worker, tmp_path):
    # Its own server: the 404 expected below must not show up in the other scenarios' checks.
    with serve(tmp_path / "taskgate") as server:
        run_id, tis = create_run(
            server, "interop_mapped", "numbers", "double", "total", mapped="double=3"
        )
        for name in ("numbers", "double[0]", "double[1]", "double[2]", "total"):
            run_task(server, worker, tis[name])
            assert server.ti(tis[name])["state"] == "success", name

        stored = server.cli_json("xcoms", "list", "--run-id", run_id, "--task-id", "double", "--json")
        assert [(x["map_index"], x["value"]) for x in stored] == [(0, 2), (1, 4), (2, 6)]  # type: ignore[index]
        assert xcom(server, "interop_mapped", run_id, "total") == 12
        # The SDK iterates a mapped task's values item by item until the first 404 past the end.
        end = f"/execution/xcoms/interop_mapped/{run_id}/double/return_value/item/3"
        assert_no_bad_answers(server, end)


def test_failing_task_is_retried_then_fails(server, worker):
    run_id, tis = create_run(server, "interop_retry", "flaky", max_tries=1)
    ti_id = tis["flaky"]
    first = queue_airflow(server, ti_id)
    worker.run(server, first)
    shown = server.ti(ti_id)
    assert (shown["state"], shown["try_number"]) == ("up_for_retry", 1)

    second = queue_airflow(server, ti_id)
    assert second["ti"]["try_number"] == 2
    worker.run(server, second)
    shown = server.ti(ti_id)
    assert (shown["state"], shown["try_number"]) == ("failed", 2)
    assert server.cli_json("xcoms", "list", "--run-id", run_id, "--json") == []
    assert_no_bad_answers(server)


def test_templated_field_is_rendered(server, worker):
    run_id, tis = create_run(server, "interop_templated", "echo")
    run_task(server, worker, tis["echo"])
    shown = server.ti(tis["echo"])
    assert shown["state"] == "success"
    assert shown["rendered_fields"]["bash_command"] == f"echo taskgate hello {run_id}"
    assert xcom(server, "interop_templated", run_id, "echo") == f"taskgate hello {run_id}"
    assert_no_bad_answers(server)


def test_spent_workload_token_cannot_start_the_task_again(server, worker):
    _run_id, tis = create_run(server, "interop_data", "produce")
    ti_id = tis["produce"]
    workload = run_task(server, worker, ti_id)
    ended = server.ti(ti_id)
    assert ended["state"] == "success"

    replay = worker.run(server, workload)
    assert replay.returncode != 0
    runs = [r for r in server.requests() if r.method == "PATCH" and r.path.endswith(f"{ti_id}/run")]
    assert [r.status for r in runs] == [200, 409]
    assert server.ti(ti_id) == ended  # nothing about the TI changed
    assert_no_bad_answers(server)


def test_task_outliving_the_token_lifetime_runs_on_refreshed_tokens(worker, tmp_path):
    ttl = 4
    # No clock leeway: an expired token is refused at once, so only refreshed ones work.
    with serve(tmp_path / "taskgate", execution_token_ttl=str(ttl), leeway="0") as server:
        server.cli("variables", "set", "slow_seconds", str(ttl * 2.5))
        run_id, tis = create_run(server, "interop_slow", "slow")
        started = time.monotonic()
        run_task(server, worker, tis["slow"])
        assert time.monotonic() - started > ttl * 2.5

        assert server.ti(tis["slow"])["state"] == "success"
        assert xcom(server, "interop_slow", run_id, "slow") == "done"
        beats = [r for r in server.requests() if r.path.endswith("/heartbeat")]
        assert len(beats) >= ttl * 2 and all(r.status == 204 for r in beats)
        assert_no_bad_answers(server)
