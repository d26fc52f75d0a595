"""What authentication costs, measured in-process (no network, no load generator).

1. Signature validations per request, counted by the validator: a new token costs one, a
   repeated token none (the verified-token cache), a refresh none.
2. The cost of one signature validation per algorithm (EdDSA, RS256, HS512), uncached.
3. The heartbeat as served against the same heartbeat with authentication overridden
   (``require_auth`` and ``authenticate`` doing no work), and the unauthenticated ping,
   each called straight through the ASGI application. Short blocks alternate many times,
   in the order ABBA (a block's place in the sequence changes its speed by a few per
   cent here), and the ratio is the median over the ABBA groups, so the machine's drift
   and the order affect both alike. Once with the token gate's per-TI cache as
   configured (a TI that heartbeats more than once a second mostly hits it) and once
   with it off (a TI that heartbeats every few seconds, as workers do, reads its
   standing every time).

    python bench/auth_overhead.py [--calls 500] [--repeats 15]

Prints a table and writes bench/results/auth_overhead.json. Uses the embedded SQLite
database in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import timeit
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from common import BEAT_BODY, PING_PATH, RUN_BODY, microseconds, write_result

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.security import authenticate, require_auth
from taskgate.services import control
from taskgate.settings import Settings
from taskgate.tokens import TaskToken, TokenIssuer, TokenValidator
from taskgate.tokens.keys import (
    KeyType,
    generate_private_key,
    generate_secret,
    signing_key_from_private,
    signing_key_from_secret,
)

VALIDATION_REPEATS = 7  # timeit repeats of 2,000 validations, per algorithm
RUN = json.dumps(RUN_BODY).encode()
BEAT = json.dumps(BEAT_BODY).encode()
PING = [("GET", PING_PATH, None, b"")]


# What the stand-in for ``authenticate`` returns instead of validating the request's token
# (the heartbeat handler reads its iat): per raw token, filled by ``prepare``.
STAND_IN_TOKENS: dict[str, TaskToken] = {}


async def call(app, method: str, path: str, token: str | None = None, body: bytes = b""):
    """One request straight into the ASGI app; returns (status, headers)."""
    headers = [(b"host", b"bench"), (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    if token is not None:
        headers.append((b"authorization", b"Bearer " + token.encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    if token in STAND_IN_TOKENS:
        scope["bench.token"] = STAND_IN_TOKENS[token]
    sent = False
    answer: dict = {}

    async def receive():
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # no disconnect while the app runs
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = dict(message.get("headers", []))

    await app(scope, receive, send)
    return answer["status"], answer["headers"]


async def prepare(runtime: Runtime, app, count: int) -> list[tuple[uuid.UUID, str]]:
    """``count`` running TIs with their execution tokens, started through ``/run``."""
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "bench")
        run = await control.create_run(session, "bench", "run", [f"t{i}" for i in range(count)])
        queued = [await runtime.lifecycle.queue(ti.id) for ti in run.task_instances]
    running = []
    for item in queued:
        status, headers = await call(app, "PATCH", f"/execution/task-instances/{item.ti.id}/run",
                                     item.workload_token, RUN)
        assert status == 200, status
        token = headers[b"refreshed-api-token"].decode()
        STAND_IN_TOKENS[token] = runtime.validator.validate(token)
        running.append((item.ti.id, token))
    return running


@asynccontextmanager
async def in_process_app(
    count: int = 16, **settings: Any
) -> AsyncIterator[tuple[Runtime, Any, list]]:
    """A runtime on a temporary embedded SQLite database, its application, and ``count``
    running TIs (id, execution token), started through ``/run``."""
    data_dir = Path(tempfile.mkdtemp(prefix="taskgate-bench-"))
    runtime = Runtime.from_settings(Settings(data_dir=data_dir, **settings))
    await runtime.prepare_database()
    app = create_app(runtime)
    try:
        yield runtime, app, await prepare(runtime, app, count)
    finally:
        await runtime.aclose()


def heartbeats(running: list) -> list[tuple[str, str, str | None, bytes]]:
    """One heartbeat request per running TI, for ``per_call``."""
    return [("PUT", f"/execution/task-instances/{ti}/heartbeat", token, BEAT)
            for ti, token in running]


async def per_call(app, requests: list[tuple[str, str, str | None, bytes]], calls: int,
                   expected: int) -> float:
    """Mean seconds per request over ``calls`` requests, cycling through ``requests``."""
    started = time.perf_counter()
    for i in range(calls):
        method, path, token, body = requests[i % len(requests)]
        status, _ = await call(app, method, path, token, body)
        if status != expected:
            raise SystemExit(f"{method} {path} answered {status}, expected {expected}")
    return (time.perf_counter() - started) / calls


# Only their code is used (see auth_overridden): the parameter names must be the real
# functions', FastAPI having analysed those.
async def _no_token(request):
    """Stands in for ``authenticate``: no work; the request's token, validated beforehand
    (``STAND_IN_TOKENS``)."""
    return request.scope["bench.token"]


async def _no_auth(security_scopes, request):
    """Stands in for ``require_auth``: no work."""


@contextmanager
def auth_overridden() -> Iterator[None]:
    """Inside, ``require_auth`` and ``authenticate`` run the no-ops' code.

    Not ``app.dependency_overrides``: while any override is set, FastAPI analyses every
    dependency of a request again on each call, which costs about as much as the whole
    heartbeat and would dilute the ratio. Swapping the functions' code keeps the
    dependency tree, and everything FastAPI does with it, exactly as served; only the
    authentication work goes (and with it the re-issue check, which finds no token)."""
    real = require_auth.__code__, authenticate.__code__
    require_auth.__code__, authenticate.__code__ = _no_auth.__code__, _no_token.__code__
    try:
        yield
    finally:
        require_auth.__code__, authenticate.__code__ = real


async def request_costs(app, running, calls: int, repeats: int) -> dict:
    """Authenticated vs auth-overridden heartbeat, and the ping: ``repeats`` ABBA groups
    of blocks of ``calls`` requests."""
    beats = heartbeats(running)
    samples: dict[str, list[float]] = {"authenticated": [], "overridden": [], "ping": []}

    async def authenticated() -> None:
        samples["authenticated"].append(await per_call(app, beats, calls, 204))

    async def overridden() -> None:
        with auth_overridden():
            samples["overridden"].append(await per_call(app, beats, calls, 204))

    await per_call(app, beats, 2000, 204)  # warm-up: caches, statement compilation
    with auth_overridden():
        await per_call(app, beats, 500, 204)
    for _ in range(repeats):
        for block in (authenticated, overridden, overridden, authenticated):
            await block()
        samples["ping"].append(await per_call(app, PING, calls, 200))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    a, o = samples["authenticated"], samples["overridden"]
    paired = [(a[i] + a[i + 1]) / (o[i] + o[i + 1]) for i in range(0, len(a), 2)]
    return {
        "microseconds_per_request": {k: round(v * 1e6, 1) for k, v in medians.items()},
        "microseconds_runs": microseconds(samples),
        "authenticated_over_overridden": round(statistics.median(paired), 3),
        "paired_ratio_quartiles": [round(q, 3) for q in statistics.quantiles(paired, n=4)],
        "auth_microseconds": round((medians["authenticated"] - medians["overridden"]) * 1e6, 1),
    }


async def validations_per_request(runtime: Runtime, app, running) -> dict:
    """Signature checks counted by the validator for new, repeated and refreshed tokens."""
    checks = lambda: runtime.validator.signature_checks  # noqa: E731
    issuer = runtime.require_issuer()
    ti, _ = running[0]
    path = f"/execution/task-instances/{ti}/heartbeat"
    fresh = [issuer.issue(ti) for _ in range(50)]
    before = checks()
    for token in fresh:
        assert (await call(app, "PUT", path, token, BEAT))[0] == 204
    new_tokens = (checks() - before) / len(fresh)
    before = checks()
    for _ in range(50):
        assert (await call(app, "PUT", path, fresh[0], BEAT))[0] == 204
    repeated = (checks() - before) / 50
    # A token near its expiry gets a Refreshed-API-Token: the refresh must not re-validate.
    short = issuer.issue(ti, ttl=20)
    before = checks()
    status, headers = await call(app, "PUT", path, short, BEAT)
    assert status == 204 and b"refreshed-api-token" in headers
    refreshed = checks() - before
    return {"new_token": new_tokens, "repeated_token": repeated,
            "request_with_refresh": refreshed}


def validation_cost(repeats: int) -> dict:
    """Microseconds for one uncached validation, per algorithm (median of ``repeats``)."""
    keys = {
        "EdDSA": signing_key_from_private(generate_private_key(KeyType.ED25519)),
        "RS256": signing_key_from_private(generate_private_key(KeyType.RSA)),
        "HS512": signing_key_from_secret(generate_secret()),
    }
    costs = {}
    for name, key in keys.items():
        token = TokenIssuer(key, audience="bench").issue(uuid.uuid4())
        validator = TokenValidator([key.verification], audience="bench")
        number = 2000
        runs = timeit.repeat(lambda: validator.validate(token), number=number, repeat=repeats)
        costs[name] = round(statistics.median(runs) / number * 1e6, 1)
    return costs


async def measure(calls: int, repeats: int) -> dict:
    async with in_process_app() as (runtime, app, running):
        result = {
            "signature_validations_per_request": await validations_per_request(runtime, app,
                                                                                running),
            "validation_microseconds": validation_cost(VALIDATION_REPEATS),
            "heartbeat": await request_costs(app, running, calls, repeats),
        }
    async with in_process_app(token_standing_cache_seconds=0) as (_runtime, app, running):
        result["heartbeat_standing_uncached"] = await request_costs(app, running, calls, repeats)
    return result

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="requests per block")
    parser.add_argument("--repeats", type=int, default=15, help="ABBA groups of blocks")
    args = parser.parse_args()
    result = asyncio.run(measure(args.calls, args.repeats))
    v = result["signature_validations_per_request"]
    print(f"signature validations per request: new token {v['new_token']:g}, "
          f"repeated token {v['repeated_token']:g}, with refresh {v['request_with_refresh']:g}")
    print("one uncached validation (µs): " + ", ".join(
        f"{alg} {us:g}" for alg, us in result["validation_microseconds"].items()))
    for name, label in (("heartbeat", "token gate cache on"),
                        ("heartbeat_standing_uncached", "token gate cache off")):
        h = result[name]
        us = h["microseconds_per_request"]
        low, _, high = h["paired_ratio_quartiles"]
        print(f"{label}: µs/request (median of {2 * args.repeats} × {args.calls}): authenticated "
              f"{us['authenticated']:g}, auth overridden {us['overridden']:g}, ping {us['ping']:g}"
              f" -> authenticated / overridden {h['authenticated_over_overridden']:.3f} "
              f"(quartiles {low:.3f}–{high:.3f}), authentication adds "
              f"{h['auth_microseconds']:g} µs")
    write_result("auth_overhead", {"benchmark": "auth_overhead", "calls": args.calls,
                                   "repeats": args.repeats, "python": sys.version.split()[0],
                                   **result})


if __name__ == "__main__":
    main()
