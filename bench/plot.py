"""Draw bench/results/compare.json: throughput and p99 per workload, per server.

    python bench/plot.py [--input bench/results/compare.json] [--output docs/performance.png]

Needs matplotlib (``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

HERE = Path(__file__).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=HERE / "results" / "compare.json")
    parser.add_argument("--output", type=Path, default=HERE.parent / "docs" / "performance.png")
    args = parser.parse_args()
    report = json.loads(args.input.read_text())
    servers = report["servers"]
    concurrencies = [str(c) for c in report["concurrency"]]
    workloads = list(next(iter(servers.values()))["workloads"])

    figure, axes = plt.subplots(2, len(concurrencies), figsize=(6 * len(concurrencies), 8),
                                squeeze=False)
    width = 0.8 / len(servers)
    for col, conc in enumerate(concurrencies):
        for metric_row, (metric, label) in enumerate((("throughput", "throughput (req/s; lifecycle: TIs/s)"),
                                                      ("p99_ms", "p99 latency (ms)"))):
            ax = axes[metric_row][col]
            for i, (name, server) in enumerate(servers.items()):
                values = [server["workloads"].get(w, {}).get(conc, {}).get(metric, {}) for w in workloads]
                medians = [v.get("median", 0) for v in values]
                errors = [[m - v.get("min", m) for m, v in zip(medians, values)],
                          [v.get("max", m) - m for m, v in zip(medians, values)]]
                positions = [x + (i - (len(servers) - 1) / 2) * width for x in range(len(workloads))]
                ax.bar(positions, medians, width, yerr=errors, capsize=2, label=server["label"])
            ax.set_xticks(range(len(workloads)), workloads)
            ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.set_title(f"concurrency {conc}")
            ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].legend()
    figure.suptitle(f"Execution API, one worker each, 127.0.0.1 — {report['when']} "
                    f"({report['seconds']:g} s x {report['repeats']} runs, medians, min-max bars)")
    figure.tight_layout()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.output, dpi=110)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
