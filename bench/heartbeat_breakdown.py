"""Where an in-process heartbeat's time goes, by taking parts away (no sampling profiler:
SQLAlchemy's greenlets confuse py-spy's stacks).

- ``heartbeat``: the whole request, straight through the ASGI app (as auth_overhead.py);
- ``without database``: the same request with the heartbeat service replaced by a no-op,
  so authentication, dependencies, body, middleware and response remain;
- ``service alone``: the heartbeat service (``taskgate.services.task_instances.heartbeat``)
  called directly, no HTTP;
- ``ping``: the unauthenticated ping, the framework floor.

    python bench/heartbeat_breakdown.py [--calls 2000] [--repeats 5]

Blocks alternate, so drift affects all alike. Uses the embedded SQLite database in a
temporary directory; writes bench/results/heartbeat_breakdown.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from auth_overhead import BEAT_BODY, RESULTS, per_call, prepare

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.services import task_instances as lifecycle
from taskgate.settings import Settings


async def _no_heartbeat(*_args: object, **_kwargs: object) -> None:
    return None


async def measure(calls: int, repeats: int) -> dict[str, list[float]]:
    runtime = Runtime.from_settings(Settings(data_dir=Path(tempfile.mkdtemp(prefix="tg-bd-"))))
    await runtime.prepare_database()
    app = create_app(runtime)
    real = lifecycle.heartbeat
    try:
        running = await prepare(runtime, app, 16)
        beats = [("PUT", f"/execution/task-instances/{ti}/heartbeat", token, BEAT_BODY)
                 for ti, token in running]
        ping = [("GET", "/execution/health/ping", None, b"")]

        async def service_alone() -> float:
            started = time.perf_counter()
            for i in range(calls):
                await real(runtime.engine, running[i % len(running)][0], hostname="bench", pid=1)
            return (time.perf_counter() - started) / calls

        samples: dict[str, list[float]] = {
            "heartbeat": [], "without database": [], "service alone": [], "ping": []}
        await per_call(app, beats, calls // 4, 204)  # warm-up
        for _ in range(repeats):
            samples["heartbeat"].append(await per_call(app, beats, calls, 204))
            lifecycle.heartbeat = _no_heartbeat
            try:
                samples["without database"].append(await per_call(app, beats, calls, 204))
            finally:
                lifecycle.heartbeat = real
            samples["service alone"].append(await service_alone())
            samples["ping"].append(await per_call(app, ping, calls, 200))
        return samples
    finally:
        lifecycle.heartbeat = real
        await runtime.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    samples = asyncio.run(measure(args.calls, args.repeats))
    medians = {name: round(statistics.median(v) * 1e6, 1) for name, v in samples.items()}
    for name, us in medians.items():
        runs = ", ".join(f"{v * 1e6:.0f}" for v in samples[name])
        print(f"{name:18s} {us:7.1f} µs/request  (runs: {runs})")
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "heartbeat_breakdown", "calls": args.calls, "repeats": args.repeats,
           "microseconds_per_request": medians,
           "microseconds_runs": {k: [round(v * 1e6, 1) for v in vs] for k, vs in samples.items()}}
    (RESULTS / "heartbeat_breakdown.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
