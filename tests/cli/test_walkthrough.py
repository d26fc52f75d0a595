"""The README walk-through, as a new user runs it: `taskgate serve` as a process, the CLI
as processes, and curl-like HTTP calls against 127.0.0.1."""

import json
import time
from pathlib import Path

import httpx
import pytest

from tests.support.api import BEAT_BODY, RUN_BODY, SUCCESS_BODY, bearer
from tests.support.processes import free_port, run_cli, serve_env, server_output, start_serve

pytestmark = pytest.mark.integration



@pytest.fixture
def env(settings) -> dict[str, str]:
    return serve_env(settings)


cli = run_cli


@pytest.fixture
def server(env: dict[str, str]):
    port = free_port()
    proc = start_serve(env, port)
    yield f"http://127.0.0.1:{port}", proc
    proc.terminate()
    proc.wait(timeout=10)


def test_walkthrough(env, server):
    url, _proc = server
    cli(env, "dags", "add", "demo")
    cli(env, "variables", "set", "greeting", "hello")
    cli(env, "connections", "add", "warehouse", "--uri", "postgres://u:pw@wh:5432/dw")
    created = json.loads(cli(env, "runs", "create", "demo", "r1", "--task", "hello", "--task", "other", "--json").stdout)
    assert [t["state"] for t in created["task_instances"]] == ["scheduled", "scheduled"]
    hello, other = (t["id"] for t in created["task_instances"])
    queued = json.loads(cli(env, "ti", "queue", hello, "--json").stdout)
    assert queued["ti"]["state"] == "queued" and queued["ti"]["try_number"] == 1

    api = f"{url}/execution/task-instances"
    run = httpx.patch(f"{api}/{hello}/run", json=RUN_BODY, headers=bearer(queued["token"]))
    assert run.status_code == 200
    token = run.headers["Refreshed-API-Token"]
    inspected = json.loads(cli(env, "tokens", "inspect", token).stdout)
    assert inspected["type"] == "execution" and inspected["claims"]["sub"] == hello

    beat = httpx.put(f"{api}/{hello}/heartbeat", json=BEAT_BODY, headers=bearer(queued["token"]))
    assert beat.status_code == 403
    foreign = httpx.put(f"{api}/{other}/heartbeat", json=BEAT_BODY, headers=bearer(token))
    assert foreign.json()["detail"] == "Token subject does not match task instance ID"
    assert httpx.put(f"{api}/{hello}/heartbeat", json=BEAT_BODY, headers=bearer(token)).status_code == 204
    assert httpx.patch(f"{api}/{hello}/state", json=SUCCESS_BODY, headers=bearer(token)).status_code == 204

    shown = json.loads(cli(env, "ti", "show", hello, "--json").stdout)
    assert (shown["state"], shown["hostname"], shown["pid"]) == ("success", "worker-1", 4242)
    listed = json.loads(cli(env, "ti", "list", "--state", "scheduled", "--json").stdout)
    assert [t["id"] for t in listed] == [other]
    assert "greeting" in cli(env, "variables", "list").stdout
    conn = json.loads(cli(env, "connections", "get", "warehouse", "--json").stdout)
    assert conn["password"] == "***" and conn["host"] == "wh"
    rotated = cli(env, "keys", "rotate-fernet")
    assert "re-encrypted 1 variables and 1 connections" in rotated.stdout
    assert cli(env, "variables", "get", "greeting").stdout.strip() == "hello"
    revealed = json.loads(cli(env, "connections", "get", "warehouse", "--json", "--reveal").stdout)
    assert revealed["password"] == "pw"


def test_revoke_from_the_cli(env, server):
    url, _proc = server
    cli(env, "dags", "add", "demo")
    created = json.loads(cli(env, "runs", "create", "demo", "r1", "--task", "t", "--json").stdout)
    ti = created["task_instances"][0]["id"]
    queued = json.loads(cli(env, "ti", "queue", ti, "--json").stdout)
    api = f"{url}/execution/task-instances/{ti}"
    token = httpx.patch(f"{api}/run", json=RUN_BODY, headers=bearer(queued["token"])).headers["Refreshed-API-Token"]
    assert httpx.put(f"{api}/heartbeat", json=BEAT_BODY, headers=bearer(token)).status_code == 204
    assert "revoked" in cli(env, "tokens", "revoke", "--ti", ti).stdout
    time.sleep(1.05)  # the server's standing cache lives at most 1 s
    refused = httpx.put(f"{api}/heartbeat", json=BEAT_BODY, headers=bearer(token))
    assert (refused.status_code, refused.json()) == (403, {"detail": "Token has been revoked"})


def test_serve_reports_what_it_created(env, server):
    _url, proc = server
    proc.terminate()
    assert proc.wait(timeout=10) == 0  # a graceful stop
    output = server_output(proc)
    data_dir = Path(env["TASKGATE_DATA_DIR"])
    assert f"created {data_dir / 'signing-key.pem'}" in output
    if "TASKGATE_DATABASE_URL" not in env:
        assert str((data_dir / "taskgate.db").resolve()) in output
        assert (data_dir / "taskgate.db").exists()


def test_routes_json_lists_run_as_only_workload_route(env):
    routes = json.loads(cli(env, "routes", "--json").stdout)
    assert {"method", "path", "token_types", "subject", "token_gate", "operator_role",
            "operator_teams"} <= set(routes[0])
    workload = [r for r in routes if "workload" in r["token_types"]]
    assert workload == [{
        "method": "PATCH", "path": "/execution/task-instances/{task_instance_id}/run",
        "token_types": ["execution", "workload"], "subject": "ti:self", "token_gate": "request",
        "operator_role": None, "operator_teams": None,
    }]
    control = {r["path"]: r["operator_role"] for r in routes if r["method"] == "PUT"
               and r["path"].startswith("/control/")}
    assert control["/control/v1/dags/{dag_id}"] == "admin"
    gated_in_write = [r["path"] for r in routes if r["token_gate"] == "write"]
    assert gated_in_write == ["/execution/task-instances/{task_instance_id}/heartbeat"]


def test_cli_errors_are_clear_and_nonzero(env):
    assert "database at revision" in cli(env, "db", "upgrade").stdout  # needs no keys
    missing = cli(env, "runs", "create", "nodag", "r", "--task", "t", check=False)
    assert missing.returncode == 1 and "taskgate dags add" in missing.stderr
    bad_id = cli(env, "ti", "show", "not-a-uuid", check=False)
    assert bad_id.returncode == 2 and "not a task instance id" in bad_id.stderr
    cli(env, "dags", "add", "d")
    created = json.loads(cli(env, "runs", "create", "d", "r", "--task", "t", "--json").stdout)
    again = cli(env, "runs", "create", "d", "r", "--task", "t", check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    ti = created["task_instances"][0]["id"]
    cli(env, "ti", "queue", ti)
    twice = cli(env, "ti", "queue", ti, check=False)
    assert twice.returncode == 1 and "cannot be queued" in twice.stderr


def test_tokens_mint_and_keys(env, tmp_path):
    import uuid

    ti = str(uuid.uuid4())
    token = cli(env, "tokens", "mint", "--ti", ti, "--scope", "workload", "--ttl", "60").stdout.strip()
    inspected = json.loads(cli(env, "tokens", "inspect", token).stdout)
    assert inspected["type"] == "workload"
    assert inspected["claims"]["exp"] - inspected["claims"]["iat"] == 60
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert cli(env, "tokens", "inspect", forged, check=False).returncode == 1
    jwks = json.loads(cli(env, "keys", "jwks").stdout)
    assert jwks["keys"][0]["alg"] == "EdDSA"
    rsa_path = tmp_path / "rsa.pem"
    cli(env, "keys", "generate", "--type", "rsa", "--out", str(rsa_path))
    rsa_env = {**env, "TASKGATE_SIGNING_KEY_FILE": str(rsa_path)}
    assert json.loads(cli(rsa_env, "keys", "jwks").stdout)["keys"][0]["alg"] == "RS256"
    refused = cli(env, "keys", "generate", "--out", str(rsa_path), check=False)
    assert refused.returncode == 1 and "refusing to overwrite" in refused.stderr
    secret = cli(env, "keys", "generate", "--type", "hs512").stdout.strip()
    hs_env = {**env, "TASKGATE_JWT_SECRET": secret}
    hs_token = cli(hs_env, "tokens", "mint", "--ti", ti).stdout.strip()
    assert json.loads(cli(hs_env, "tokens", "inspect", hs_token).stdout)["valid"] is True
    assert cli(env, "tokens", "inspect", hs_token, check=False).returncode == 1


def test_serve_with_several_workers(env):
    port = free_port()
    proc = start_serve(env, port, "--workers", "2")
    try:
        cli(env, "dags", "add", "w")
        created = json.loads(cli(env, "runs", "create", "w", "r", "--task", "t", "--json").stdout)
        ti = created["task_instances"][0]["id"]
        queued = json.loads(cli(env, "ti", "queue", ti, "--json").stdout)
        api = f"http://127.0.0.1:{port}/execution/task-instances/{ti}"
        with httpx.Client() as http:  # new connections: requests spread over the workers
            run = http.patch(f"{api}/run", json=RUN_BODY, headers=bearer(queued["token"]))
            token = run.headers["Refreshed-API-Token"]
            for _ in range(6):
                with httpx.Client() as fresh:
                    beat = fresh.put(f"{api}/heartbeat", json=BEAT_BODY, headers=bearer(token))
                    assert beat.status_code == 204
            assert http.patch(f"{api}/state", json=SUCCESS_BODY, headers=bearer(token)).status_code == 204
        assert json.loads(cli(env, "ti", "show", ti, "--json").stdout)["state"] == "success"
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    # Start-up (the schema check) and shutdown leave no traceback behind, on either backend.
    assert "Traceback" not in server_output(proc)
