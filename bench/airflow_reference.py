"""Apache Airflow 3.3's own Execution API, started as a reference target for benchmarks.

`airflow_reference()` is a context manager that

1. builds (once) a separate cached venv with `apache-airflow-core==3.3.*` under
   `<repo>/.cache/airflow-bench-venv` (git-ignored; rebuilt when SPEC changes);
2. runs bench/_airflow_side.py in that venv: a fresh AIRFLOW_HOME with a SQLite database
   (`airflow db migrate`), a DAG parsed and stored like the DAG processor does, one manual
   DAG run with `n_running + n_queued` task instances, a variable, and tokens minted with
   Airflow's own JWTGenerator;
3. starts only the execution API, with Airflow's own CLI
   (`airflow api-server --apps execution --workers 1`, uvicorn) on 127.0.0.1:<free port>;
4. moves the `n_running` TIs to running with a real `PATCH .../run` (common.RUN_BODY), so
   heartbeats answer 204; the `n_queued` TIs stay queued, each with a workload token, for
   whole lifecycles (`/run` -> heartbeats -> `PATCH .../state`);
5. on exit: terminate, bounded wait, kill.

Nothing here imports Airflow or taskgate; only httpx is needed on the caller's side.

    python bench/airflow_reference.py      # self-check: build, start, five calls, stop
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx
from common import BEAT_BODY, PING_PATH, RUN_BODY, SUCCESS_BODY, TI, TOKEN_LIFETIME_SECONDS
from server_process import free_port, stop, wait_healthy

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache"
SPEC = "apache-airflow-core==3.3.*"
SIDE = Path(__file__).with_name("_airflow_side.py")
# What task-sdk 1.3 sends; Airflow's server falls back to its newest version without it.
API_VERSION = "2026-06-30"


@dataclass
class AirflowTarget:
    base_url: str  # http://127.0.0.1:PORT (routes live under /execution)
    running: list[TI]  # state running, started with common.RUN_BODY
    queued: list[TI]  # state queued, workload token: PATCH .../run exchanges it
    variable_key: str
    algorithm: str  # the JWT signing algorithm Airflow used (its default: HS512)
    home: Path
    process: subprocess.Popen
    headers: dict[str, str] = field(default_factory=lambda: {"Airflow-API-Version": API_VERSION})
    setup_seconds: dict[str, float] = field(default_factory=dict)


def ensure_venv(cache_dir: Path = CACHE, timeout: float = 900) -> Path:
    """The cached venv's python, built on first use; a different SPEC rebuilds it."""
    venv = cache_dir / "airflow-bench-venv"
    python = venv / "bin" / "python"
    marker = venv / ".bench-spec"
    if python.exists() and marker.exists() and marker.read_text() == SPEC:
        return python
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, timeout=120)
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", SPEC],
                         capture_output=True, text=True, timeout=timeout)
    if pip.returncode:
        raise RuntimeError(f"installing {SPEC} failed:\n{pip.stderr[-3000:]}")
    marker.write_text(SPEC)
    return python


def airflow_env(home: Path) -> dict[str, str]:
    """Configuration shared by the preparing script and the server (same DB, same key):
    Airflow as shipped, signing with its default, a shared HS512 secret."""
    env = {**os.environ,
           "AIRFLOW_HOME": str(home),
           "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
           "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
           "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
           "AIRFLOW__CORE__FERNET_KEY": ""}  # logging stays at Airflow's defaults (access log on)
    env["AIRFLOW__API_AUTH__JWT_SECRET"] = secrets.token_urlsafe(64)
    # Execution tokens, and workload tokens (they live as long as a task may stay queued).
    env["AIRFLOW__EXECUTION_API__JWT_EXPIRATION_TIME"] = str(TOKEN_LIFETIME_SECONDS)
    env["AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT"] = str(TOKEN_LIFETIME_SECONDS)
    for name in ("PYTHONPATH", "VIRTUAL_ENV"):  # keep the caller's environment out
        env.pop(name, None)
    return env


@contextlib.contextmanager
def airflow_reference(n_running: int = 64, n_queued: int = 0) -> Iterator[AirflowTarget]:
    """Airflow's execution API, prepared and running on 127.0.0.1; stopped on exit."""
    timings = {}
    t0 = time.monotonic()
    python = ensure_venv()
    timings["venv"] = time.monotonic() - t0
    with tempfile.TemporaryDirectory(prefix="airflow-bench-") as tmp:
        home = Path(tmp)
        env = airflow_env(home)
        t0 = time.monotonic()
        prepared = subprocess.run(
            [str(python), str(SIDE), "--running", str(n_running), "--queued", str(n_queued)],
            env=env, capture_output=True, text=True, timeout=300)
        if prepared.returncode:
            raise RuntimeError(f"preparing Airflow failed:\n{prepared.stderr[-3000:]}")
        data = json.loads(prepared.stdout)
        timings["prepare"] = time.monotonic() - t0

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = open(home / "api-server.log", "wb")
        t0 = time.monotonic()
        process = subprocess.Popen(
            [str(python.parent / "airflow"), "api-server", "--apps", "execution",
             "--workers", "1", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            wait_healthy(base_url + PING_PATH, process)
            timings["start"] = time.monotonic() - t0
            target = AirflowTarget(
                base_url=base_url, running=[TI(**t) for t in data["running"]],
                queued=[TI(**t) for t in data["queued"]], variable_key=data["variable_key"],
                algorithm=data["algorithm"], home=home, process=process, setup_seconds=timings)
            t0 = time.monotonic()
            with httpx.Client(base_url=base_url + "/execution", headers=target.headers,
                              timeout=30) as http:
                for ti in target.running:
                    r = http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY,
                                   headers={"Authorization": f"Bearer {ti.token}"})
                    if r.status_code != 200:
                        raise RuntimeError(f"/run of {ti.task_id}: {r.status_code} {r.text}")
            timings["run_running_tis"] = time.monotonic() - t0
            yield target
        except BaseException:
            log.flush()
            sys.stderr.write((home / "api-server.log").read_text(errors="replace")[-3000:])
            raise
        finally:
            stop(process)
            log.close()


def self_check() -> None:
    """Build, start, and make the five calls a benchmark relies on; print their statuses."""
    t0 = time.monotonic()
    with airflow_reference(n_running=4, n_queued=1) as af:
        print(f"setup {time.monotonic() - t0:.1f} s: "
              + ", ".join(f"{k} {v:.1f} s" for k, v in af.setup_seconds.items()))
        print(f"server {af.base_url} (pid {af.process.pid}), JWT {af.algorithm}")
        ti, lc = af.running[0], af.queued[0]
        auth = {"Authorization": f"Bearer {ti.token}"}
        with httpx.Client(base_url=af.base_url, headers=af.headers, timeout=30) as http:
            checks = [
                ("GET  ping", http.get(PING_PATH), 200),
                ("PUT  heartbeat", http.put(f"/execution/task-instances/{ti.id}/heartbeat",
                                            json=BEAT_BODY, headers=auth), 204),
                ("GET  variable", http.get(f"/execution/variables/{af.variable_key}",
                                           headers=auth), 200),
                ("POST xcom", http.post(f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}"
                                        "/bench_key", json={"n": 1}, headers=auth), 201),
            ]
            run = http.patch(f"/execution/task-instances/{lc.id}/run", json=RUN_BODY,
                             headers={"Authorization": f"Bearer {lc.token}"})
            steps = [run.status_code]
            if run.status_code == 200:
                lc_auth = {"Authorization": f"Bearer {run.headers['Refreshed-API-Token']}"}
                for _ in range(3):
                    steps.append(http.put(f"/execution/task-instances/{lc.id}/heartbeat",
                                          json=BEAT_BODY, headers=lc_auth).status_code)
                steps.append(http.patch(f"/execution/task-instances/{lc.id}/state",
                                        headers=lc_auth, json=SUCCESS_BODY).status_code)
        ok = True
        for name, response, want in checks:
            ok &= response.status_code == want
            print(f"{name:<16} {response.status_code} (want {want})")
        want_lc = [200, 204, 204, 204, 204]
        ok &= steps == want_lc
        print(f"{'lifecycle':<16} {steps} (want {want_lc})")
    print("all good" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    self_check()
