"""Two taskgate processes on one PostgreSQL database, one of them validation-only; a worker
alternates between them through its whole lifecycle, token refresh included."""

import json
import os
import time

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.support.api import BEAT_BODY, RUN_BODY, SUCCESS_BODY, bearer
from tests.support.processes import free_port, run_cli, start_serve

pytestmark = pytest.mark.integration



@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_worker_alternates_between_signing_and_validation_only_replicas(database_url, tmp_path):
    fernet = Fernet.generate_key().decode()
    common = {**os.environ, "TASKGATE_DATABASE_URL": database_url, "TASKGATE_FERNET_KEYS": fernet,
              "TASKGATE_EXECUTION_TOKEN_TTL": "31"}  # refresh due on nearly every request
    port_a, port_b = free_port(), free_port()
    env_a = {**common, "TASKGATE_DATA_DIR": str(tmp_path / "a")}
    env_b = {**common, "TASKGATE_DATA_DIR": str(tmp_path / "b"),
             "TASKGATE_JWKS_URL": f"http://127.0.0.1:{port_a}/.well-known/jwks.json"}
    a = start_serve(env_a, port_a)
    b = start_serve(env_b, port_b)
    try:
        def cli(*args: str) -> str:
            return run_cli(env_a, *args).stdout

        cli("dags", "add", "d")
        cli("variables", "set", "v", "secret-value")
        run = json.loads(cli("runs", "create", "d", "r", "--task", "t", "--task", "u", "--json"))
        ti, other = (t["id"] for t in run["task_instances"])
        workload = json.loads(cli("ti", "queue", ti, "--json"))["token"]
        other_workload = json.loads(cli("ti", "queue", other, "--json"))["token"]

        replicas = [f"http://127.0.0.1:{port_a}/execution", f"http://127.0.0.1:{port_b}/execution"]
        # A validation-only replica cannot exchange a workload token.
        refused = httpx.patch(f"{replicas[1]}/task-instances/{other}/run", json=RUN_BODY,
                              headers=bearer(other_workload))
        assert refused.status_code == 503 and refused.json()["detail"]["reason"] == "no_signing_key"

        started = httpx.patch(f"{replicas[0]}/task-instances/{ti}/run", json=RUN_BODY, headers=bearer(workload))
        assert started.status_code == 200
        token = started.headers["Refreshed-API-Token"]
        refreshes = {0: 0, 1: 0}
        for step in range(8):
            which = step % 2
            base = replicas[which]
            time.sleep(0.6)
            for response in (
                httpx.put(f"{base}/task-instances/{ti}/heartbeat", json=BEAT_BODY, headers=bearer(token)),
                httpx.get(f"{base}/variables/v", headers=bearer(token)),
                httpx.post(f"{base}/xcoms/d/r/t/step", json=step, headers=bearer(token)),
            ):
                assert response.status_code < 300, (which, response.status_code, response.text)
                if fresh := response.headers.get("Refreshed-API-Token"):
                    refreshes[which] += 1
                    token = fresh
        assert refreshes[0] > 0 and refreshes[1] == 0  # only the signing replica mints
        assert httpx.get(f"{replicas[1]}/variables/v", headers=bearer(token)).json()["value"] == "secret-value"
        done = httpx.patch(f"{replicas[1]}/task-instances/{ti}/state", json=SUCCESS_BODY, headers=bearer(token))
        assert done.status_code == 204
        shown = json.loads(cli("ti", "show", ti, "--json"))
        assert shown["state"] == "success"
    finally:
        for proc in (a, b):
            proc.terminate()
            proc.wait(timeout=10)
