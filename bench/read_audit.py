"""What the read audit costs: variable GET throughput and p99 with every read recorded
(the default) next to the same server with ``TASKGATE_READ_AUDIT=false``, on SQLite and
PostgreSQL, over HTTP with the same load generator as ``compare.py``. The servers of a
backend are up at once and take turns, in an order rotated each repeat
(``compare.measure``); the figures are each side's median, the ratio of the medians, and
the median of the per-repeat ratios (the two runs of a repeat are back to back, so
this one is the least moved by a machine whose speed drifts between repeats).

    python bench/read_audit.py [--seconds 3] [--repeats 9] [--concurrency 16 64]
                               [--backends sqlite postgresql]

Writes bench/results/read_audit.json.
"""

from __future__ import annotations

import argparse
import statistics
from contextlib import ExitStack

from common import write_result
from compare import measure
from targets import postgres_reachable, taskgate

RUNNING = 200  # TIs with execution tokens, the load's requesters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    options = parser.parse_args()

    report: dict[str, dict] = {}
    for backend in options.backends:
        if backend == "postgresql" and not postgres_reachable():
            print("postgresql: not reachable, skipped")
            continue
        with ExitStack() as stack:
            servers = {
                "audit on": stack.enter_context(taskgate(backend, RUNNING, 0)),
                "audit off": stack.enter_context(
                    taskgate(backend, RUNNING, 0, {"TASKGATE_READ_AUDIT": "false"})
                ),
            }
            print(f"{backend}:", flush=True)
            results = measure(servers, ["variable"], options.concurrency, options.seconds,
                              options.repeats)
        report[backend] = {}
        for concurrency in map(str, options.concurrency):
            on, off = (results[name]["variable"][concurrency] for name in ("audit on", "audit off"))
            ratio = on["throughput"]["median"] / off["throughput"]["median"]
            paired = statistics.median(
                a["throughput"] / b["throughput"] for a, b in zip(on["runs"], off["runs"])
            )
            report[backend][concurrency] = {"audit on": on, "audit off": off, "on/off": ratio,
                                            "paired on/off": paired}

    print()
    print(f"{'backend':<11} {'c':>3} {'audit on req/s':>15} {'audit off req/s':>16} "
          f"{'on/off':>7} {'paired':>7} {'p99 on ms':>10} {'p99 off ms':>11}")
    for backend, by_conc in report.items():
        for concurrency, row in by_conc.items():
            on, off = row["audit on"], row["audit off"]
            print(f"{backend:<11} {concurrency:>3} {on['throughput']['median']:>15.1f} "
                  f"{off['throughput']['median']:>16.1f} {row['on/off']:>7.1%} "
                  f"{row['paired on/off']:>7.1%} "
                  f"{on['p99_ms']['median']:>10.2f} {off['p99_ms']['median']:>11.2f}")
    write_result("read_audit", report)


if __name__ == "__main__":
    main()
