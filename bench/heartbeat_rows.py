"""Heartbeat latency with 1,000 vs 1,000,000 task-instance rows, on PostgreSQL.

Starts `taskgate serve` (one worker) on 127.0.0.1 against a fresh PostgreSQL database per
size, fills task_instances to the size, and times sequential heartbeats of one running TI
from one client. Prints a table and writes bench/results/heartbeat_rows.json.

    python bench/heartbeat_rows.py [--sizes 1000 1000000] [--requests 2000] [--repeats 3]

PostgreSQL: TASKGATE_BENCH_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import asyncpg
import httpx
from common import BEAT_BODY, RUN_BODY, write_result
from server_process import free_port, stop, wait_healthy
from targets import postgres_database


async def fill(dsn: str, rows: int) -> None:
    """Bulk rows in one DAG run, as many TIs as asked (minus the one we drive)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """
            INSERT INTO task_instances (id, dag_id, run_id, task_id, map_index, try_number,
                max_tries, state, updated_at)
            SELECT gen_random_uuid(), 'bench', 'fill', 'task_' || g, -1, 1, 0,
                   (ARRAY['success','failed','scheduled','running'])[1 + g % 4], now()
            FROM generate_series(1, $1) AS g
            """,
            rows - 1,
        )
        await conn.execute("ANALYZE task_instances")
    finally:
        await conn.close()


def cli(env: dict[str, str], *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "taskgate", *args], env=env, check=True,
                          capture_output=True, text=True).stdout


def measure(size: int, requests: int, repeats: int) -> dict:
    with postgres_database() as dsn:
        data_dir = tempfile.mkdtemp(prefix="taskgate-bench-")
        env = {**os.environ, "TASKGATE_DATA_DIR": data_dir,
               "TASKGATE_DATABASE_URL": dsn.replace("postgresql://", "postgresql+asyncpg://", 1)}
        cli(env, "db", "upgrade")
        cli(env, "dags", "add", "bench")
        cli(env, "runs", "create", "bench", "fill", "--task", "probe")
        started = time.monotonic()
        asyncio.run(fill(dsn, size))
        fill_seconds = time.monotonic() - started
        ti = json.loads(cli(env, "ti", "list", "--state", "scheduled", "--json"))
        probe = next(t["id"] for t in ti if t["task_id"] == "probe")
        workload = json.loads(cli(env, "ti", "queue", probe, "--json"))["token"]
        port = free_port()
        server = subprocess.Popen([sys.executable, "-m", "taskgate", "serve", "--port", str(port)],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}/execution"
            wait_healthy(f"{base}/health", server)
            with httpx.Client(base_url=base, timeout=10) as http:
                run = http.patch(f"/task-instances/{probe}/run", json=RUN_BODY,
                                 headers={"Authorization": f"Bearer {workload}"})
                token = run.headers["Refreshed-API-Token"]
                headers = {"Authorization": f"Bearer {token}"}
                url = f"/task-instances/{probe}/heartbeat"
                for _ in range(200):  # warm-up: connections, caches
                    http.put(url, json=BEAT_BODY, headers=headers)
                medians, p99s = [], []
                for _ in range(repeats):
                    samples = []
                    for _ in range(requests):
                        t0 = time.perf_counter()
                        response = http.put(url, json=BEAT_BODY, headers=headers)
                        samples.append(time.perf_counter() - t0)
                        assert response.status_code == 204, response.text
                    samples.sort()
                    medians.append(statistics.median(samples) * 1000)
                    p99s.append(samples[int(len(samples) * 0.99)] * 1000)
        finally:
            stop(server)
    return {"rows": size, "fill_seconds": round(fill_seconds, 1),
            "median_ms": round(statistics.median(medians), 3),
            "median_ms_runs": [round(m, 3) for m in medians],
            "p99_ms": round(statistics.median(p99s), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 1_000_000])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    results = [measure(size, args.requests, args.repeats) for size in args.sizes]
    print(f"{'TI rows':>10} {'median ms':>10} {'p99 ms':>8}  runs (median ms)")
    for r in results:
        print(f"{r['rows']:>10,} {r['median_ms']:>10.3f} {r['p99_ms']:>8.3f}  {r['median_ms_runs']}")
    ratio = results[-1]["median_ms"] / results[0]["median_ms"]
    print(f"largest / smallest median: {ratio:.3f}")
    write_result("heartbeat_rows", {"benchmark": "heartbeat_rows", "results": results,
                                    "ratio": round(ratio, 3), "requests": args.requests,
                                    "repeats": args.repeats})


if __name__ == "__main__":
    main()
