"""Where an in-process heartbeat's time goes, by taking parts away (no sampling profiler:
SQLAlchemy's greenlets confuse py-spy's stacks).

- ``heartbeat``: the whole request, straight through the ASGI app (as auth_overhead.py);
- ``without database``: the same request with the heartbeat service replaced by a no-op,
  so authentication, dependencies, body, middleware and response remain;
- ``service alone``: the heartbeat service (``taskgate.services.task_instances.heartbeat``)
  called directly, no HTTP;
- ``ping``: the unauthenticated ping, the framework floor.

It also splits single requests at the service call: the time before it (middleware,
routing, authentication, dependencies, body), in it, and after it (response,
middleware), once with the real service and once with the no-op.

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

from auth_overhead import BEAT_BODY, RESULTS, call, per_call, prepare

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.services import task_instances as lifecycle
from taskgate.settings import Settings


async def _no_heartbeat(*_args: object, **_kwargs: object) -> None:
    return None


async def split(app, beats, calls: int, real) -> dict[str, dict[str, float]]:
    """Median µs before, inside and after the service call, with and without the database."""
    marks: dict[str, float] = {}

    async def timed(*args: object, **kwargs: object) -> None:
        marks["start"] = time.perf_counter()
        try:
            await real(*args, **kwargs)
        finally:
            marks["end"] = time.perf_counter()

    async def no_op(*_args: object, **_kwargs: object) -> None:
        marks["start"] = marks["end"] = time.perf_counter()

    result = {}
    for name, service in (("with database", timed), ("without database", no_op)):
        lifecycle.heartbeat = service
        parts: dict[str, list[float]] = {"before": [], "service": [], "after": []}
        try:
            for i in range(calls):
                started = time.perf_counter()
                await call(app, *beats[i % len(beats)])
                ended = time.perf_counter()
                parts["before"].append(marks["start"] - started)
                parts["service"].append(marks["end"] - marks["start"])
                parts["after"].append(ended - marks["end"])
        finally:
            lifecycle.heartbeat = real
        result[name] = {k: round(statistics.median(v) * 1e6, 1) for k, v in parts.items()}
    return result


async def measure(calls: int, repeats: int) -> tuple[dict[str, list[float]], dict]:
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
        return samples, await split(app, beats, calls, real)
    finally:
        lifecycle.heartbeat = real
        await runtime.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    samples, parts = asyncio.run(measure(args.calls, args.repeats))
    medians = {name: round(statistics.median(v) * 1e6, 1) for name, v in samples.items()}
    for name, us in medians.items():
        runs = ", ".join(f"{v * 1e6:.0f}" for v in samples[name])
        print(f"{name:18s} {us:7.1f} µs/request  (runs: {runs})")
    for name, us in parts.items():
        print(f"split, {name}: before the service {us['before']:g} µs, in it "
              f"{us['service']:g}, after it {us['after']:g}")
    RESULTS.mkdir(exist_ok=True)
    out = {"benchmark": "heartbeat_breakdown", "calls": args.calls, "repeats": args.repeats,
           "microseconds_per_request": medians, "split_microseconds": parts,
           "microseconds_runs": {k: [round(v * 1e6, 1) for v in vs] for k, vs in samples.items()}}
    (RESULTS / "heartbeat_breakdown.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
