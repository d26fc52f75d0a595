"""The remote CLI: `taskgate` with only TASKGATE_SERVER and TASKGATE_OPERATOR_KEY, on a
"machine" with no database and no keys, against `taskgate serve` on 127.0.0.1 — the same
output and exit codes as the local mode on the server's own data."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from tests.support.processes import TASKGATE, free_port, run_cli, serve_env, start_serve

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url():  # SQLite only: the server's backend is not what the remote CLI tests
    return None


@pytest.fixture
def local(settings) -> dict[str, str]:
    return serve_env(settings)


@pytest.fixture
def server(local: dict[str, str]):
    port = free_port()
    proc = start_serve(local, port)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=10)


class Remote:
    """The CLI as a process that knows nothing but the server and a key."""

    def __init__(self, server: str, key: str | None, cwd: Path) -> None:
        self.env = {"PATH": os.environ["PATH"], "TASKGATE_SERVER": server}
        if key is not None:
            self.env["TASKGATE_OPERATOR_KEY"] = key
        self.cwd = cwd

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*TASKGATE, *args], env=self.env, cwd=self.cwd,
                                capture_output=True, text=True, timeout=60, check=False)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([*TASKGATE, *args], env=self.env, cwd=self.cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _key(local: dict[str, str], name: str, role: str) -> str:
    made = run_cli(local, "operators", "add", name, "--role", role, "--json")
    return json.loads(made.stdout)["key"]


def _same(local_result, remote_result) -> None:
    assert (remote_result.returncode, remote_result.stdout, remote_result.stderr) == (
        local_result.returncode, local_result.stdout, local_result.stderr
    )


def test_remote_commands_answer_as_local_ones(local, server, tmp_path) -> None:
    nowhere = tmp_path / "elsewhere"
    nowhere.mkdir()
    remote = Remote(server, _key(local, "orchestrator", "admin"), nowhere)

    def both(*args: str) -> subprocess.CompletedProcess[str]:
        """The command run remotely and locally: the same answer (read commands)."""
        there = remote(*args, check=False)
        _same(run_cli(local, *args, check=False), there)
        return there

    assert remote("dags", "add", "etl").stdout == "DAG etl (team: -, token binding: server default)\n"
    assert both("dags", "add", "etl").returncode == 0  # again: the same answer either way
    assert json.loads(both("dags", "list", "--json").stdout) == [
        {"dag_id": "etl", "team": None, "token_binding": None}]
    assert "token binding: dpop" in remote("dags", "add", "etl", "--token-binding", "dpop").stdout
    assert json.loads(both("dags", "list", "--json").stdout)[0]["token_binding"] == "dpop"
    both("dags", "list")
    declared = remote("dags", "add", "etl", "--allow-variable", "etl_*", "--task", "load",
                      "--allow-xcom-from", "up")
    assert "Declared access of DAG etl" in declared.stdout
    policy = json.loads(both("dags", "policy", "etl", "--json").stdout)
    assert (policy["declared"], policy["tasks"]["load"]["xcom_from"]) == (True, ["up"])
    both("dags", "policy", "etl")
    assert json.loads(remote("dags", "policy", "etl", "--clear", "--json").stdout)["declared"] is False
    assert both("dags", "policy", "nope").returncode == 1
    assert json.loads(both("audit", "reads", "--json").stdout) == []
    assert both("audit", "reads", "--since", "soon").returncode == 2

    made = json.loads(remote("runs", "create", "etl", "r1", "--task", "a", "--task", "b",
                             "--max-tries", "1", "--json").stdout)
    there = json.loads(run_cli(local, "runs", "create", "etl", "r2", "--task", "a", "--task",
                               "b", "--max-tries", "1", "--json").stdout)
    assert made.keys() == there.keys()
    assert [(t["task_id"], t["state"]) for t in made["task_instances"]] == [
        (t["task_id"], t["state"]) for t in there["task_instances"]
    ]
    duplicate = both("runs", "create", "etl", "r1", "--task", "a")
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    too_many = both("runs", "create", "etl", "r3", "--task", "a", "--mapped", "a=100000")
    assert too_many.returncode == 2 and "mapped task" in too_many.stderr

    listed = json.loads(both("ti", "list", "--dag-id", "etl", "--json").stdout)
    assert len(listed) == 4
    both("ti", "list", "--state", "scheduled")
    ti, other = made["task_instances"][0]["id"], there["task_instances"][0]["id"]

    queued = json.loads(remote("ti", "queue", ti, "--json").stdout)
    queued_here = json.loads(run_cli(local, "ti", "queue", other, "--json").stdout)
    assert queued.keys() == queued_here.keys() == {"token", "ti"}
    assert queued["ti"].keys() == queued_here["ti"].keys()
    assert (queued["ti"]["id"], queued["ti"]["state"]) == (ti, "queued")
    again = both("ti", "queue", ti)
    assert again.returncode == 1 and "queued" in again.stderr
    shown = json.loads(both("ti", "show", ti, "--json").stdout)
    assert shown["state"] == "queued" and shown["workload_tokens_spent"] == 0
    both("ti", "show", ti)
    missing = both("ti", "show", str(uuid.uuid4()))
    assert missing.returncode == 1 and "not found" in missing.stderr
    assert both("ti", "show", "not-an-id").returncode == 2

    revoked = remote("tokens", "revoke", "--ti", ti)
    assert revoked.stdout.startswith(f"tokens of {ti} issued before ")

    assert remote("variables", "set", "greeting", "hello").stdout == "variable greeting set\n"
    assert both("variables", "get", "greeting").stdout == "hello\n"
    both("variables", "list", "--json")
    assert remote("connections", "add", "wh", "--uri", "postgres://u:pw@db:5432/dw").stdout == (
        "connection wh (postgres) saved\n"
    )
    assert json.loads(both("connections", "get", "wh", "--json").stdout)["password"] == "***"
    both("connections", "get", "wh", "--reveal")
    both("connections", "list", "--json")
    gone = both("variables", "delete", "nope")
    assert gone.returncode == 1 and "not found" in gone.stderr
    both("xcoms", "list", "--json")
    assert both("xcoms", "get", "etl", "r1", "a").returncode == 1
    both("operators", "list")

    events = [json.loads(line) for line in both("events", "--json").stdout.splitlines()]
    assert {"ti.state", "ti.revoked", "operator.action"} <= {e["event"] for e in events}
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    both("events", "--after", str(events[-3]["id"]))

    assert not (nowhere / ".taskgate").exists()  # nothing local was made or read


def test_refusals(local, server, tmp_path) -> None:
    reader = Remote(server, _key(local, "watcher", "reader"), tmp_path)
    refused = reader("dags", "add", "etl", check=False)
    assert refused.returncode == 1
    assert "admin" in refused.stderr and "reader" in refused.stderr and refused.stdout == ""
    assert reader("dags", "list", "--json").stdout == "[]\n"

    unknown = Remote(server, "tgk_not_a_key", tmp_path)("dags", "list", check=False)
    assert unknown.returncode == 1 and unknown.stderr.startswith("error:")
    no_key = Remote(server, None, tmp_path)("dags", "list", check=False)
    assert no_key.returncode == 2 and "TASKGATE_OPERATOR_KEY" in no_key.stderr
    local_only = reader("keys", "jwks", check=False)
    assert local_only.returncode == 2 and "server's own database" in local_only.stderr
    down = Remote(f"http://127.0.0.1:{free_port()}", "tgk_x", tmp_path)("dags", "list", check=False)
    assert down.returncode == 1 and "no answer" in down.stderr
    assert not (tmp_path / ".taskgate").exists()


def test_server_option_wins_over_the_environment(local, server, tmp_path) -> None:
    key = _key(local, "admin", "admin")
    wrong = Remote(f"http://127.0.0.1:{free_port()}", "tgk_wrong", tmp_path)
    listed = wrong("--server", server, "--key", key, "dags", "list", "--json")
    assert listed.stdout == "[]\n"


def test_events_follow(local, server, tmp_path) -> None:
    remote = Remote(server, _key(local, "follower", "reader"), tmp_path)
    run_cli(local, "dags", "add", "etl")
    latest = json.loads(remote("events", "--json").stdout.splitlines()[-1])["id"]
    follower = remote.popen("events", "--follow", "--json", "--after", str(latest))
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
    try:
        run_cli(local, "runs", "create", "etl", "r1", "--task", "a")
        got = [json.loads(lines.get(timeout=30)) for _ in range(2)]
        assert [e["event"] for e in got] == ["operator.action", "ti.state"]
        assert got[0]["id"] == latest + 1 and got[1]["data"]["to"] == "scheduled"
    finally:
        follower.terminate()
        follower.wait(timeout=10)
