"""A worker through time and trouble: a command that outlives its first execution token,
and a server restart in the middle of a task. Real servers on 127.0.0.1 (SQLite: the
point is the client, which the backend does not change)."""

import re
import signal
import sys
import time
from datetime import timedelta

import pytest

from taskgate.settings import Settings
from tests.support.processes import free_port, start_serve
from tests.support.workloads import finish, start_worker, worker_env

pytestmark = [
    pytest.mark.integration,
    pytest.mark.parametrize("database_url", ["sqlite"], indirect=True),
]

TTL = 45


@pytest.fixture
def settings(data_dir, database_url):
    # No leeway: the first execution token is refused from second 45 on, so a command
    # that runs past it only succeeds on refreshed tokens (refreshed with < 30 s left).
    return Settings(data_dir=data_dir, database_url=database_url, execution_token_ttl=TTL, leeway=0)


async def test_a_command_outlives_the_execution_token(live_server, workloads, settings):
    ti_id = await workloads.new_ti()
    proc = start_worker(
        await workloads.queue(ti_id), "sleep", str(TTL + 3), env=worker_env(settings),
        api_url=f"{live_server.url}/execution", interval=3,
    )
    code, _out, err = finish(proc, timeout=TTL + 30)
    assert code == 0, err
    ti = await workloads.ti(ti_id)
    assert ti.state == "success"
    # Heartbeats were accepted after the first token had expired...
    assert ti.last_heartbeat_at - ti.start_date > timedelta(seconds=TTL)
    # ...on refreshed tokens, and the client never met a refusal.
    summary = err.splitlines()[-1]
    assert int(re.search(r"(\d+) token refresh", summary).group(1)) >= 1, summary
    assert "403" not in err and "no longer ours" not in err


async def test_the_server_restarts_while_a_task_runs(workloads, settings):
    ti_id = await workloads.new_ti()
    env = worker_env(settings)
    port = free_port()
    server = start_serve(env, port)
    try:
        proc = start_worker(
            await workloads.queue(ti_id), sys.executable, "-c", "import time; time.sleep(8)",
            env=env, api_url=f"http://127.0.0.1:{port}/execution", interval=0.5,
        )
        time.sleep(2.5)  # running, heartbeating
        assert (await workloads.ti(ti_id)).state == "running"
        server.send_signal(signal.SIGKILL)  # a crash, not a graceful stop
        server.wait(10)
        time.sleep(2)  # heartbeats fail and back off meanwhile
        server = start_serve(env, port)
        code, _out, err = finish(proc, timeout=60)
    finally:
        server.kill()
        server.wait(10)
    assert code == 0, err
    assert "ConnectError" in err and "retry" in err  # it did meet the outage
    assert (await workloads.ti(ti_id)).state == "success"
