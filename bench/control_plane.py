"""The control plane's two figures: how soon a follower of the event feed gets a change
(from the event's commit to its arrival at the follower, p50/p99), and how many task
instances an orchestrator queues per second over the control API, next to the CLI doing
the same work (one `taskgate ti queue` process per TI, on the database host and remote).

On PostgreSQL two replicas run: the follower reads from one while the writes go to the
same one, then to the other. An event's ``at`` is stamped in the transaction that
commits it, so "commit to follower" here includes the commit itself; both ends read the
same clock (one machine).

    python bench/control_plane.py                 # SQLite, and PostgreSQL if it answers
    python bench/control_plane.py --backends sqlite --changes 100 --queue 100 --cli 10 --repeats 1
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import datetime

import httpx
from common import write_result
from server_process import free_port, stop, wait_healthy
from targets import migrated_runtime, postgres_database, postgres_reachable

EVENTS = "/control/v1/events"


async def _admin_key(env: dict[str, str]) -> str:
    from taskgate.services import operators
    from taskgate.services.operators import Role

    async with migrated_runtime(env) as runtime, runtime.sessionmaker() as session:
        return (await operators.add_operator(session, "bench", Role.ADMIN)).key


def _serve(env: dict[str, str], stack: ExitStack) -> str:
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "taskgate", "serve", "--port", str(port), "--no-access-log"],
        env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stack.callback(stop, server)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/execution/health/ping", server)
    return url


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def event_latency(reader: str, writer: str, headers: dict[str, str], changes: int) -> list[float]:
    """Seconds from each change's commit to its arrival at a follower of ``reader``."""
    with httpx.Client(headers=headers, timeout=10) as http:
        latest = http.get(reader + EVENTS, params={"follow": "false", "limit": 10_000}).json()
        after = latest[-1]["id"] if latest else 0
        delays: list[float] = []
        done = threading.Event()

        def follow() -> None:
            with http.stream("GET", reader + EVENTS, params={"after": after}) as stream:
                data = None
                for line in stream.iter_lines():
                    if line.startswith("data: "):
                        data = json.loads(line[6:])
                    elif not line and data is not None:
                        arrived = time.time()
                        at = datetime.fromisoformat(data["at"]).timestamp()
                        delays.append(arrived - at)
                        data = None
                        if len(delays) == changes:
                            done.set()
                            return

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        time.sleep(0.5)  # the stream is open and caught up
        with httpx.Client(base_url=writer, headers=headers, timeout=10) as write:
            for i in range(changes):
                answer = write.put(f"/control/v1/variables/bench_{i % 10}",
                                   json={"value": str(i)})
                answer.raise_for_status()
                time.sleep(0.02)  # one change at a time: latency, not a backlog
        done.wait(30)
        return delays


def _new_run(url: str, headers: dict[str, str], run_id: str, count: int) -> list[str]:
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        http.put("/control/v1/dags/bench", json={}).raise_for_status()
        created = http.post("/control/v1/dags/bench/runs",
                            json={"run_id": run_id, "tasks": [f"t{i}" for i in range(count)]})
        created.raise_for_status()
        return [ti["id"] for ti in created.json()["task_instances"]]


def queue_over_http(url: str, headers: dict[str, str], ids: list[str], concurrency: int) -> float:
    """Task instances queued per second over the control API by ``concurrency`` clients."""
    def queue(chunk: list[str]) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
            for ti_id in chunk:
                http.post(f"/control/v1/task-instances/{ti_id}/queue").raise_for_status()

    chunks = [ids[i::concurrency] for i in range(concurrency)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(queue, chunks))
    return len(ids) / (time.perf_counter() - started)


def queue_with_cli(env: dict[str, str], ids: list[str]) -> float:
    """Task instances queued per second, one `taskgate ti queue --json` process each."""
    started = time.perf_counter()
    for ti_id in ids:
        subprocess.run([sys.executable, "-m", "taskgate", "ti", "queue", ti_id, "--json"],
                       env=env, check=True, capture_output=True, timeout=60)
    return len(ids) / (time.perf_counter() - started)


def measure(backend: str, args: argparse.Namespace) -> dict[str, object]:
    data_dir = tempfile.mkdtemp(prefix="taskgate-bench-control-")
    env = {"TASKGATE_DATA_DIR": data_dir, "TASKGATE_LOG_LEVEL": "warning"}
    result: dict[str, object] = {"backend": backend}
    with ExitStack() as stack:
        if backend == "postgresql":
            dsn = stack.enter_context(postgres_database())
            env["TASKGATE_DATABASE_URL"] = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        key = asyncio.run(_admin_key(env))
        headers = {"Authorization": f"Bearer {key}"}
        replicas = [_serve(env, stack) for _ in range(2 if backend == "postgresql" else 1)]
        pairs = {"same replica": (replicas[0], replicas[0])}
        if len(replicas) == 2:
            pairs["other replica"] = (replicas[0], replicas[1])
        for name, (reader, writer) in pairs.items():
            delays = event_latency(reader, writer, headers, args.changes)
            result[f"event latency, {name}"] = {
                "count": len(delays), "p50_ms": round(_percentile(delays, 0.5) * 1e3, 1),
                "p99_ms": round(_percentile(delays, 0.99) * 1e3, 1),
            }
        url = replicas[0]
        local = {**os.environ, **env}
        remote = {k: v for k, v in os.environ.items() if not k.startswith("TASKGATE_")}
        remote |= {"TASKGATE_SERVER": url, "TASKGATE_OPERATOR_KEY": key,
                   "TASKGATE_DATA_DIR": tempfile.mkdtemp(prefix="taskgate-bench-nodb-")}
        ways = {
            "control API, 1 client": lambda ids: queue_over_http(url, headers, ids, 1),
            "control API, 8 clients": lambda ids: queue_over_http(url, headers, ids, 8),
            "CLI on the database host": lambda ids: queue_with_cli(local, ids),
            "remote CLI": lambda ids: queue_with_cli(remote, ids),
        }
        rates: dict[str, list[float]] = {name: [] for name in ways}
        for repeat in range(args.repeats):
            # The ways take turns within each repeat, so a drift of the machine's speed
            # touches all of them alike.
            for name, way in ways.items():
                count = args.cli if "CLI" in name else args.queue
                rates[name].append(way(_new_run(url, headers, f"{name}-{repeat}", count)))
        for name, values in rates.items():
            result[f"TIs queued/s, {name}"] = round(statistics.median(values), 2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--changes", type=int, default=200, help="changes followed per pair")
    parser.add_argument("--queue", type=int, default=300, help="TIs queued over HTTP per run")
    parser.add_argument("--cli", type=int, default=20, help="TIs queued by CLI processes")
    parser.add_argument("--repeats", type=int, default=3, help="queue runs per way (median)")
    args = parser.parse_args()
    results = []
    for backend in args.backends.split(","):
        if backend == "postgresql" and not postgres_reachable():
            print("PostgreSQL does not answer: skipped")
            continue
        results.append(measure(backend, args))
    for result in results:
        print(f"\n{result['backend']}")
        for name, value in result.items():
            if name != "backend":
                print(f"  {name:38} {value}")
    print(f"\nwritten: {write_result('control_plane', {'results': results})}")


if __name__ == "__main__":
    main()
