"""`taskgate worker run` as a user runs it, against a real server on 127.0.0.1 (and
in-process): outcomes, retries, XComs, log files, signals, bad input."""

import json
import os
import signal
import sys
import time

import pytest
from sqlalchemy import select

from taskgate.db.models import XCom
from tests.support.workloads import finish, start_worker, worker_env

pytestmark = pytest.mark.integration

PY = sys.executable


async def test_success_streams_output_logs_it_and_pushes_the_return_value(
    live_server, workloads, runtime, settings, tmp_path
):
    ti_id = await workloads.new_ti()
    workload = await workloads.queue(ti_id)
    log_file = tmp_path / "task.log"
    script = (
        "import json, os; print('hello from the task', flush=True); "
        "json.dump({'rows': 3}, open(os.environ['TASKGATE_XCOM_FILE'], 'w'))"
    )
    code, out, err = finish(start_worker(
        workload, PY, "-c", script, env=worker_env(settings),
        api_url=f"{live_server.url}/execution", extra=("--log-file", str(log_file)),
    ))
    assert code == 0, err
    assert "hello from the task" in out
    assert "hello from the task" in log_file.read_text()
    assert "success" in err.splitlines()[-1]
    assert (await workloads.ti(ti_id)).state == "success"
    async with runtime.sessionmaker() as session:
        stored = (await session.execute(select(XCom).where(XCom.key == "return_value"))).scalar_one()
    assert json.loads(stored.value) == {"rows": 3}


async def test_failure_is_retried_once_then_failed(live_server, workloads, settings):
    ti_id = await workloads.new_ti(max_tries=1)
    failing = (PY, "-c", "import sys; sys.exit(3)")
    url = f"{live_server.url}/execution"
    code, _out, err = finish(start_worker(await workloads.queue(ti_id), *failing, env=worker_env(settings), api_url=url))
    ti = await workloads.ti(ti_id)
    assert (code, ti.state, ti.try_number) == (3, "up_for_retry", 1), err

    code, _out, err = finish(start_worker(await workloads.queue(ti_id), *failing, env=worker_env(settings), api_url=url))
    ti = await workloads.ti(ti_id)
    assert (code, ti.state, ti.try_number) == (3, "failed", 2), err


async def test_sigterm_fails_the_ti_and_stops_the_command(live_server, workloads, settings, tmp_path):
    ti_id = await workloads.new_ti(max_tries=3)  # retries left: a signal still means failed
    pid_file = tmp_path / "child.pid"
    proc = start_worker(
        await workloads.queue(ti_id), "sh", "-c", f"echo $$ > {pid_file}; exec sleep 60",
        env=worker_env(settings), api_url=f"{live_server.url}/execution",
    )
    deadline = time.monotonic() + 20
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()
        time.sleep(0.05)
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGTERM)
    code, _out, err = finish(proc, timeout=30)
    assert code == 128 + signal.SIGTERM, err
    assert "received SIGTERM" in err
    assert (await workloads.ti(ti_id)).state == "failed"
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


async def test_in_process_worker_uses_the_local_database(workloads, settings):
    ti_id = await workloads.new_ti()
    code, out, err = finish(start_worker(await workloads.queue(ti_id), "echo", "in-process", env=worker_env(settings)))
    assert (code, out.strip()) == (0, "in-process"), err
    assert (await workloads.ti(ti_id)).state == "success"


async def test_in_process_worker_refuses_a_foreign_token(workloads, settings, tmp_path):
    mine, other = await workloads.new_ti("mine"), await workloads.new_ti("other")
    workload = json.loads((await workloads.queue(mine)).read_text())
    workload["token"] = json.loads((await workloads.queue(other)).read_text())["token"]
    forged = tmp_path / "foreign.json"
    forged.write_text(json.dumps(workload))
    code, _out, err = finish(start_worker(forged, "true", env=worker_env(settings)))
    assert code == 1
    assert "403 Token subject does not match task instance ID" in err
    assert (await workloads.ti(mine)).state == "queued"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_bad_input_is_refused_before_the_ti_starts(workloads, settings, tmp_path):
    ti_id = await workloads.new_ti()
    workload = await workloads.queue(ti_id)
    env = worker_env(settings)
    code, _out, err = finish(start_worker(workload, "no-such-command-xyz", env=env))
    assert (code, "command not found: no-such-command-xyz" in err) == (127, True)
    assert (await workloads.ti(ti_id)).state == "queued"  # the workload token is still unused

    broken = tmp_path / "broken.json"
    broken.write_text('{"token": "x"}')
    code, _out, err = finish(start_worker(broken, "true", env=env))
    assert code == 2 and "ti: Field required" in err and "taskgate ti queue" in err


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_in_process_worker_with_bad_settings_says_so_once(workloads, settings):
    workload = await workloads.queue(await workloads.new_ti())
    env = {**worker_env(settings), "TASKGATE_LOG_LEVEL": "loud"}
    code, _out, err = finish(start_worker(workload, "true", env=env))
    assert code == 1
    assert "log_level" in err
    assert err.count("error:") == 1, err  # no second, misleading "database not ready"
