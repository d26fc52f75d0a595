"""What the event loop costs: every workload of ``compare.py`` on ``taskgate serve`` with
``TASKGATE_EVENT_LOOP=asyncio`` (the default) next to the same server with ``uvloop``,
over HTTP with the same load generator. The two servers of a backend are up at once and
take turns, in an order rotated each repeat (``compare.measure``); the figures are each
side's median and the median of the per-repeat ratios (asyncio / uvloop).

    python bench/event_loop.py [--seconds 3] [--repeats 5] [--concurrency 16 64]
                               [--backends sqlite postgresql] [--workloads ...]

Writes bench/results/event_loop.json.
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import ExitStack

from common import write_result
from compare import WORKLOADS, measure
from targets import postgres_reachable, taskgate

RUNNING = 200  # TIs with execution tokens, the load's requesters
QUEUED = 12000  # TIs per server for the lifecycle workload
LOOPS = ("asyncio", "uvloop")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=WORKLOADS)
    options = parser.parse_args()
    queued = QUEUED if "lifecycle" in options.workloads else 0

    report: dict[str, dict] = {}
    for backend in options.backends:
        if backend == "postgresql" and not postgres_reachable():
            print("postgresql: not reachable, skipped")
            continue
        with ExitStack() as stack:
            servers = {
                loop: stack.enter_context(
                    taskgate(backend, RUNNING, queued, {"TASKGATE_EVENT_LOOP": loop}))
                for loop in LOOPS
            }
            print(f"{backend}:", flush=True)
            results = measure(servers, options.workloads, options.concurrency,
                              options.seconds, options.repeats)
        report[backend] = {}
        for workload in options.workloads:
            for concurrency in map(str, options.concurrency):
                first, second = (results[loop][workload][concurrency] for loop in LOOPS)
                paired = statistics.median(
                    a["throughput"] / b["throughput"]
                    for a, b in zip(first["runs"], second["runs"]) if b["throughput"]
                )
                report[backend].setdefault(workload, {})[concurrency] = {
                    **{loop: results[loop][workload][concurrency] for loop in LOOPS},
                    "paired asyncio/uvloop": paired,
                }

    print()
    print(f"{'backend':<11} {'workload':<10} {'c':>3} {'asyncio':>9} {'uvloop':>9} "
          f"{'paired':>7} {'p99 asyncio ms':>15} {'p99 uvloop ms':>14}")
    for backend, by_workload in report.items():
        for workload, by_conc in by_workload.items():
            for concurrency, row in by_conc.items():
                first, second = (row[loop] for loop in LOOPS)
                print(f"{backend:<11} {workload:<10} {concurrency:>3} "
                      f"{first['throughput']['median']:>9.1f} "
                      f"{second['throughput']['median']:>9.1f} "
                      f"{row['paired asyncio/uvloop']:>7.1%} "
                      f"{first['p99_ms']['median']:>15.2f} {second['p99_ms']['median']:>14.2f}")
    write_result("event_loop", report)


if __name__ == "__main__":
    main()
