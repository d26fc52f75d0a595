"""Where an in-process heartbeat's time goes, by taking parts away (no sampling profiler:
SQLAlchemy's greenlets confuse py-spy's stacks).

- ``heartbeat``: the whole request, straight through the ASGI app (as auth_overhead.py);
- ``without database``: the same request with the heartbeat service replaced by a no-op,
  so authentication, dependencies, body, middleware and response remain;
- ``service alone``: the heartbeat service (``Lifecycle.heartbeat``, ``taskgate.services.lifecycle``)
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
import statistics
import time
from unittest import mock

from auth_overhead import PING, call, heartbeats, in_process_app, per_call
from common import HOSTNAME, PID, microseconds, write_result

from taskgate.services.lifecycle import Lifecycle

SERVICE = Lifecycle.heartbeat  # the real one, kept while the class attribute is patched


async def split(app, beats, calls: int) -> dict[str, dict[str, float]]:
    """Median µs before, inside and after the service call, with and without the database."""
    marks: dict[str, float] = {}

    def marked(service):  # type: ignore[no-untyped-def]
        async def around(*args: object, **kwargs: object) -> None:
            marks["start"] = time.perf_counter()
            try:
                await service(*args, **kwargs)
            finally:
                marks["end"] = time.perf_counter()
        return around

    result = {}
    for name, service in (("with database", SERVICE), ("without database", _no_heartbeat)):
        parts: dict[str, list[float]] = {"before": [], "service": [], "after": []}
        with mock.patch.object(Lifecycle, "heartbeat", marked(service)):
            for i in range(calls):
                started = time.perf_counter()
                await call(app, *beats[i % len(beats)])
                ended = time.perf_counter()
                parts["before"].append(marks["start"] - started)
                parts["service"].append(marks["end"] - marks["start"])
                parts["after"].append(ended - marks["end"])
        result[name] = {k: round(statistics.median(v) * 1e6, 1) for k, v in parts.items()}
    return result


async def _no_heartbeat(*_args: object, **_kwargs: object) -> None:
    return None


async def measure(calls: int, repeats: int) -> tuple[dict[str, list[float]], dict]:
    async with in_process_app() as (runtime, app, running):
        beats = heartbeats(running)

        async def service_alone() -> float:
            started = time.perf_counter()
            for i in range(calls):
                ti_id = running[i % len(running)][0]
                await runtime.lifecycle.heartbeat(ti_id, hostname=HOSTNAME, pid=PID,
                                                  token_iat=time.time())
            return (time.perf_counter() - started) / calls

        samples: dict[str, list[float]] = {
            "heartbeat": [], "without database": [], "service alone": [], "ping": []}
        await per_call(app, beats, calls // 4, 204)  # warm-up
        for _ in range(repeats):
            samples["heartbeat"].append(await per_call(app, beats, calls, 204))
            with mock.patch.object(Lifecycle, "heartbeat", _no_heartbeat):
                samples["without database"].append(await per_call(app, beats, calls, 204))
            samples["service alone"].append(await service_alone())
            samples["ping"].append(await per_call(app, PING, calls, 200))
        return samples, await split(app, beats, calls)


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
    write_result("heartbeat_breakdown", {
        "benchmark": "heartbeat_breakdown", "calls": args.calls, "repeats": args.repeats,
        "microseconds_per_request": medians, "split_microseconds": parts,
        "microseconds_runs": microseconds(samples)})


if __name__ == "__main__":
    main()
