"""An orchestrator on another host: a whole DAG run driven with nothing but the server's
URL and an operator key. Runs are created and TIs queued over HTTP by the remote CLI,
`taskgate worker run` runs each, and the orchestrator learns every final state from the
event stream alone (`taskgate events --follow --json`, a process of its own)."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tests.support.processes import TASKGATE, free_port, run_cli, serve_env, start_serve

pytestmark = pytest.mark.integration

TASKS = {"extract": 0, "transform": 3, "load": 0}  # task -> the exit code of its command


def _orchestrator_env(url: str, key: str) -> dict[str, str]:
    """A machine with no database and no keys: no TASKGATE_* but the server and the key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
    return env | {"TASKGATE_SERVER": url, "TASKGATE_OPERATOR_KEY": key,
                  "TASKGATE_API_URL": f"{url}/execution"}


class EventLines(threading.Thread):
    """`taskgate events --follow --json` as a process; its JSON lines as they come."""

    def __init__(self, env: dict[str, str], cwd: Path, after: int) -> None:
        super().__init__(daemon=True)
        self.process = subprocess.Popen(
            [*TASKGATE, "events", "--follow", "--json", "--after", str(after)],
            env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.events: list[dict] = []

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.events.append(json.loads(line))

    def final_states(self) -> dict[str, str]:
        last: dict[str, str] = {}
        for event in self.events:
            if event["event"] == "ti.state":
                last[event["data"]["task_id"]] = event["data"]["to"]
        return last


def test_a_dag_run_driven_from_another_host(settings, tmp_path):
    server_env = serve_env(settings)
    port = free_port()
    server = start_serve(server_env, port)
    url = f"http://127.0.0.1:{port}"
    key = json.loads(
        run_cli(server_env, "operators", "add", "orchestrator", "--role", "admin", "--json").stdout
    )["key"]
    host = tmp_path / "orchestrator"  # its working directory: no .taskgate in it
    host.mkdir()
    env = _orchestrator_env(url, key)

    def remote(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*TASKGATE, *args], env=env, cwd=host, capture_output=True,
                              text=True, timeout=60, check=False)
        if check:
            assert done.returncode == 0, (args, done.stderr)
        return done

    follower = None
    try:
        backlog = [json.loads(line) for line in remote("events", "--json").stdout.splitlines()]
        follower = EventLines(env, host, backlog[-1]["id"] if backlog else 0)
        follower.start()
        remote("dags", "add", "pipeline")
        task_args = [arg for task in TASKS for arg in ("--task", task)]
        created = json.loads(remote("runs", "create", "pipeline", "r1", *task_args, "--json").stdout)
        for ti in created["task_instances"]:
            workload = host / f"{ti['task_id']}.json"
            workload.write_text(remote("ti", "queue", ti["id"], "--json").stdout)
            code = TASKS[ti["task_id"]]
            ran = remote("worker", "run", str(workload), "--heartbeat-interval", "0.5", "--",
                         "python", "-c", f"import sys; print('working'); sys.exit({code})",
                         check=False)
            assert ran.returncode == code, ran.stderr
        deadline = time.monotonic() + 10
        expected = {task: "success" if code == 0 else "failed" for task, code in TASKS.items()}
        while follower.final_states() != expected and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        if follower is not None:
            follower.process.terminate()
            follower.process.wait(10)
        server.terminate()
        server.wait(15)
    assert follower.final_states() == expected
    ids = [event["id"] for event in follower.events]
    assert ids == sorted(set(ids))  # in order, none twice
    changes = [(e["data"]["task_id"], e["data"]["from"], e["data"]["to"])
               for e in follower.events if e["event"] == "ti.state"]
    assert changes[:3] == [(task, None, "scheduled") for task in TASKS]
    assert ("transform", "running", "failed") in changes
    actors = {e["data"]["actor"] for e in follower.events}
    assert "orchestrator" in actors and any(a.startswith("task:") for a in actors)
    # The orchestrator's host has no database and no keys of its own.
    assert not (host / ".taskgate" / "taskgate.db").exists()
    assert not (host / ".taskgate" / "signing-key.pem").exists()
