"""taskgate next to Airflow 3.3's own Execution API, under the same load, in one run.

For each server (taskgate on SQLite, on PostgreSQL when reachable, and Airflow's
Execution API on SQLite), one worker process each, on 127.0.0.1, this drives five
workloads at each concurrency (closed loop: every connection waits for its answer):

  ping        GET  /execution/health/ping         unauthenticated: the framework floor
  heartbeat   PUT  /execution/task-instances/{id}/heartbeat
  variable    GET  /execution/variables/{key}
  xcom        POST /execution/xcoms/{dag}/{run}/{task}/{key}
  lifecycle   PATCH /run, 3 heartbeats, PATCH /state success: whole TIs per second

All servers are started first; each (workload, concurrency) then runs ``--repeats`` times
for ``--seconds`` on every server, the servers taking turns (see ``measure``). The table
shows medians with min-max, and every taskgate figure as a ratio to Airflow's. Results go
to bench/results/compare.json; ``python bench/plot.py`` draws them.

    python bench/compare.py                       # full run: 10 s x 3 repeats, c=16 and 64
    python bench/compare.py --seconds 3 --repeats 1 --no-airflow      # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import ExitStack

import loadgen
import targets
import uvloop
from common import BEAT_BODY, PING_PATH, RUN_BODY, SUCCESS_BODY, TI, write_result
from targets import Target

WORKLOADS = ("ping", "heartbeat", "variable", "xcom", "lifecycle")
SUCCESS = json.dumps(SUCCESS_BODY).encode()
BEAT = json.dumps(BEAT_BODY).encode()
RUN = json.dumps(RUN_BODY).encode()
XCOM_VALUE = json.dumps({"rows": 128, "path": "s3://bucket/key"}).encode()
REFRESHED = b"refreshed-api-token"


def _headers(target: Target, token: str | None, json_body: bool = False) -> dict[str, str]:
    headers = dict(target.headers)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if json_body:
        headers["Content-Type"] = "application/json"
    return headers


class Authed:
    """A request for one TI that follows ``Refreshed-API-Token``, as a worker does. A
    refreshed token is kept on the TI, for the workloads after this one."""

    def __init__(self, target: Target, method: str, path: str, ti: TI, body: bytes = b""):
        self.target, self.method, self.path, self.body, self.ti = target, method, path, body, ti
        self.use(ti.token)

    def use(self, token: str) -> None:
        self.ti.token = token
        self.raw = loadgen.build_request(
            self.method, self.path, _headers(self.target, token, bool(self.body)), self.body)

    def follow(self, response: loadgen.Response | None) -> None:
        if response is not None and REFRESHED in response.headers:
            self.use(response.headers[REFRESHED].decode())


def scenario(target: Target, workload: str) -> Callable:
    """The per-connection loop of ``workload`` against ``target``."""
    running = target.running
    if workload == "ping":
        raw = loadgen.build_request("GET", PING_PATH, target.headers)

        async def ping(conn: loadgen.Connection, index: int) -> None:
            while conn.open:
                await conn.send(raw, 200)
        return ping

    if workload in ("heartbeat", "variable", "xcom"):
        def request_for(ti: TI) -> Authed:
            if workload == "heartbeat":
                return Authed(target, "PUT", f"/execution/task-instances/{ti.id}/heartbeat",
                              ti, BEAT)
            if workload == "variable":
                return Authed(target, "GET", f"/execution/variables/{target.variable_key}", ti)
            return Authed(target, "POST", f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}"
                          f"/bench?map_index={ti.map_index}", ti, XCOM_VALUE)
        expected = {"heartbeat": (204,), "variable": (200,), "xcom": (200, 201)}[workload]
        requests = [request_for(ti) for ti in running]

        async def steady(conn: loadgen.Connection, index: int) -> None:
            request = requests[index % len(requests)]
            while conn.open:
                request.follow(await conn.send(request.raw, *expected))
        return steady

    async def lifecycle(conn: loadgen.Connection, index: int) -> None:
        while conn.open:
            ti = target.take_queued()
            if ti is None:
                return  # the prepared TIs are used up: the run ends early
            start = loadgen.build_request("PATCH", f"/execution/task-instances/{ti.id}/run",
                                          _headers(target, ti.token, True), RUN)
            started = await conn.send(start, 200)
            if started is None or REFRESHED not in started.headers:
                continue
            ti.token = started.headers[REFRESHED].decode()  # the execution token
            beat = Authed(target, "PUT", f"/execution/task-instances/{ti.id}/heartbeat", ti, BEAT)
            for _ in range(3):
                beat.follow(await conn.send(beat.raw, 204))
            done = loadgen.build_request("PATCH", f"/execution/task-instances/{ti.id}/state",
                                         _headers(target, ti.token, True), SUCCESS)
            if await conn.send(done, 204) is not None:
                conn.unit_done()
    return lifecycle


def summarize(runs: list[loadgen.RunStats], workload: str) -> dict:
    per_run = [{
        "throughput": round(r.units_per_second() if workload == "lifecycle" else r.throughput(), 1),
        "requests_per_second": round(r.throughput(), 1),
        "p50_ms": round(r.median_latency() * 1000, 2),
        "p99_ms": round(r.percentile(0.99) * 1000, 2),
        "requests": r.requests,
        "errors": dict(r.errors),
        "seconds": round(r.seconds, 2),
    } for r in runs]

    def med(key: str) -> dict:
        values = [run[key] for run in per_run]
        return {"median": statistics.median(values), "min": min(values), "max": max(values)}

    return {"throughput": med("throughput"), "p50_ms": med("p50_ms"), "p99_ms": med("p99_ms"),
            "errors": sum(sum(run["errors"].values()) for run in per_run), "runs": per_run}


def measure(servers: dict[str, Target], workloads, concurrencies, seconds: float,
            repeats: int) -> dict[str, dict]:
    """Every (workload, concurrency, repeat) on every server, the servers taking turns.

    All servers are up at once and only one is under load at a time. For each workload and
    concurrency, repeat r runs the servers in an order rotated by r, so over the repeats
    each server runs in each place once: a machine that drifts in speed (a VM's CPU steal
    changes by the minute) moves taskgate's and Airflow's medians alike, and the ratios
    hold. Measuring one server's workloads all before the next would put minutes between
    the two sides of a ratio.
    """
    names = list(servers)
    results: dict[str, dict] = {name: {} for name in names}
    for workload in workloads:
        for concurrency in concurrencies:
            runs: dict[str, list[loadgen.RunStats]] = {name: [] for name in names}
            for repeat in range(repeats):
                shift = repeat % len(names)
                for name in names[shift:] + names[:shift]:
                    target = servers[name]
                    runs[name].append(uvloop.run(loadgen.run(
                        target.port, scenario(target, workload), concurrency=concurrency,
                        seconds=seconds)))
                    time.sleep(0.5)  # let the server settle between runs
            for name in names:
                summary = summarize(runs[name], workload)
                results[name].setdefault(workload, {})[str(concurrency)] = summary
                print(f"  {servers[name].name:<22} {workload:<10} c={concurrency:<3} "
                      f"{summary['throughput']['median']:>9.1f}/s  "
                      f"p99 {summary['p99_ms']['median']:>8.2f} ms  errors {summary['errors']}",
                      flush=True)
    return results


def print_table(report: dict) -> None:
    servers = report["servers"]
    reference = servers.get("airflow")
    unit = {"lifecycle": "TIs/s"}
    print()
    print(f"{'server':<22} {'workload':<10} {'c':>3} {'throughput (min-max)':>28} "
          f"{'p99 ms':>9} {'x Airflow':>10} {'p99 / Airflow':>13}")
    for name, result in servers.items():
        for workload, by_conc in result["workloads"].items():
            for conc, s in by_conc.items():
                t = s["throughput"]
                ratio = p99_ratio = ""
                if reference and name != "airflow":
                    ref = reference["workloads"].get(workload, {}).get(conc)
                    if ref and ref["throughput"]["median"]:
                        ratio = f"{t['median'] / ref['throughput']['median']:.1f}x"
                        p99_ratio = f"{s['p99_ms']['median'] / ref['p99_ms']['median']:.3f}"
                label = f"{t['median']:.0f} {unit.get(workload, 'req/s')} ({t['min']:.0f}-{t['max']:.0f})"
                print(f"{result['label']:<22} {workload:<10} {conc:>3} {label:>28} "
                      f"{s['p99_ms']['median']:>9.2f} {ratio:>10} {p99_ratio:>13}")
    for name, result in servers.items():
        w = result["workloads"]
        if "ping" in w and "heartbeat" in w:
            for conc in w["heartbeat"]:
                share = w["heartbeat"][conc]["throughput"]["median"] / w["ping"][conc]["throughput"]["median"]
                print(f"{result['label']}: heartbeat / ping at c={conc}: {share:.0%}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"], help="taskgate's databases")
    parser.add_argument("--no-airflow", action="store_true", help="skip the Airflow reference")
    parser.add_argument("--queued", type=int, default=12000,
                        help="TIs prepared per taskgate server for the lifecycle workload")
    parser.add_argument("--airflow-queued", type=int, default=2000,
                        help="TIs prepared for Airflow's lifecycle workload")
    args = parser.parse_args()

    n_running = max(args.concurrency)
    backends = [b for b in args.backends if b != "postgresql" or targets.postgres_reachable()]
    if "postgresql" in args.backends and "postgresql" not in backends:
        print("PostgreSQL not reachable: taskgate runs on SQLite only")
    lifecycles = "lifecycle" in args.workloads
    plans = [(f"taskgate-{b}", lambda b=b: targets.taskgate(b, n_running, args.queued if lifecycles else 0))
             for b in backends]
    if not args.no_airflow:
        plans.insert(0, ("airflow", lambda: targets.airflow(
            n_running, args.airflow_queued if lifecycles else 0)))
    with ExitStack() as stack:
        started: dict[str, Target] = {}
        for key, start in plans:
            print(f"starting {key} ...", flush=True)
            started[key] = stack.enter_context(start())
        measured = measure(started, args.workloads, args.concurrency, args.seconds, args.repeats)
        servers = {key: {"label": started[key].name, "workloads": measured[key]}
                   for key in started}
    report = {
        "benchmark": "compare",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "seconds": args.seconds, "repeats": args.repeats, "concurrency": args.concurrency,
        "order": "interleaved",
        "servers": servers,
    }
    print_table(report)
    print(f"\nwrote {write_result('compare', report)}")


if __name__ == "__main__":
    main()
