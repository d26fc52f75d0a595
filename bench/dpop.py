"""What a DPoP-bound heartbeat costs next to a bearer one: heartbeat throughput and p99
over HTTP with the same load generator as ``compare.py``, on SQLite and PostgreSQL, and
where the extra time goes.

One ``taskgate serve`` per backend holds both kinds of running TIs: some started with
a plain ``/run`` (bearer execution tokens), some started with a DPoP proof (tokens bound
to a key of their own, ``targets.taskgate(n_bound=...)``). Bearer and DPoP heartbeats
then take turns on that server at each concurrency, in an order swapped each repeat, so
the two sides differ only in the token and its proof: same process, database and
caches. The figures are each side's median, the ratio of the medians, and the median of
the per-repeat ratios (DPoP / bearer; the two runs of a repeat are back to back).

Every DPoP request needs a proof never used before. Signing one costs the load process
CPU on the machine the server runs on, so just before each DPoP run (outside the timed
part) the script signs a pool of proofs per TI, sized from the bearer rate seen so far
x 2, and builds the raw requests from them; a connection whose pool runs dry stops, and
that is reported (it should be 0). A proof is good for ``TASKGATE_DPOP_PROOF_WINDOW``
(60 s), far longer than a run. A 1 s warm-up of each side, not recorded, comes first: it
gives the first pool its size, and a proof the server refuses stops the script there.

The breakdown runs in-process after the HTTP runs: ``tokens.dpop.verify_proof`` on a
real proof and its parts, with ``timeit``, and ``services.dpop_replay.first_use``, one
record through the group commit, one at a time and 64 at once, on each backend.

    python bench/dpop.py [--seconds 3] [--repeats 5] [--concurrency 16 64]
                         [--backends sqlite postgresql]

Writes bench/results/dpop.json.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import math
import os
import platform
import statistics
import tempfile
import time
import timeit
import uuid
from contextlib import AsyncExitStack, ExitStack
from datetime import UTC, datetime, timedelta

import jwt
import loadgen
import uvloop
from common import TI, write_result
from compare import BEAT, REFRESHED, scenario, summarize
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from targets import Target, migrated_runtime, postgres_database, postgres_reachable, taskgate

from taskgate.services import dpop_replay
from taskgate.tokens import dpop as proofs
from taskgate.tokens.dpop import access_token_hash, verify_proof

SIDES = ("bearer", "dpop")
HOST_URL = "http://127.0.0.1"  # what the server reads from loadgen's ``Host: 127.0.0.1``
POOL_FLOOR = 50  # proofs per TI at least, whatever the bearer rate
DEFAULT_RATE = 3000.0  # req/s assumed before any bearer run has been measured


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class ProofKey:
    """A worker's Ed25519 key and the DPoP proofs it signs (RFC 9449 §4.2): the JWS is
    put together here, its constant header encoded once, so a proof costs one signature
    and one small JSON document."""

    def __init__(self) -> None:
        self.private = Ed25519PrivateKey.generate()
        public = self.private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.jwk = {"kty": "OKP", "crv": "Ed25519", "x": _b64(public).decode()}
        self.header = _b64(_json({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": self.jwk}))

    def proof(self, method: str, htu: str, ath: str) -> str:
        claims = {"jti": uuid.uuid4().hex, "htm": method, "htu": htu,
                  "iat": int(time.time()), "ath": ath}
        signing_input = self.header + b"." + _b64(_json(claims))
        return (signing_input + b"." + _b64(self.private.sign(signing_input))).decode()


def bind(url: str, workload_token: str) -> tuple[ProofKey, str]:
    """A new key and its proof for ``PATCH url`` with ``workload_token``: what
    ``targets.taskgate`` needs to start a TI with a bound token."""
    key = ProofKey()
    return key, key.proof("PATCH", url, access_token_hash(workload_token))


class BoundBeat:
    """The heartbeat of one bound TI: a pool of ready requests, each with its own proof."""

    def __init__(self, ti: TI, key: ProofKey) -> None:
        self.ti, self.key = ti, key
        self.path = f"/execution/task-instances/{ti.id}/heartbeat"
        self.pool: list[bytes] = []

    def request(self) -> bytes:
        proof = self.key.proof("PUT", HOST_URL + self.path, access_token_hash(self.ti.token))
        return loadgen.build_request("PUT", self.path, {
            "Authorization": f"DPoP {self.ti.token}", "DPoP": proof,
            "Content-Type": "application/json"}, BEAT)

    def refill(self, count: int) -> None:
        self.pool = [self.request() for _ in range(count)]


class Counters:
    def __init__(self) -> None:
        self.ran_out = 0  # connections that stopped before the deadline: pool empty
        self.refreshed = 0  # tokens re-issued mid-run (then signed inline; expected 0)


def dpop_scenario(beats: list[BoundBeat], counters: Counters):
    async def steady(conn: loadgen.Connection, index: int) -> None:
        beat = beats[index % len(beats)]
        while conn.open:
            if not beat.pool:
                counters.ran_out += 1
                return
            response = await conn.send(beat.pool.pop(), 204)
            if response is not None and REFRESHED in response.headers:
                counters.refreshed += 1
                beat.ti.token = response.headers[REFRESHED].decode()
                beat.refill(len(beat.pool))  # the old proofs carry the old token's hash
    return steady


def measure(target: Target, beats: list[BoundBeat], concurrencies: list[int], seconds: float,
            repeats: int) -> dict[str, dict]:
    """Bearer and DPoP heartbeats on ``target`` at each concurrency, taking turns."""
    bearer = scenario(target, "heartbeat")
    rates: list[float] = []

    def run(side: str, concurrency: int, length: float) -> tuple[loadgen.RunStats, dict]:
        if side == "bearer":
            stats = uvloop.run(loadgen.run(target.port, bearer, concurrency=concurrency,
                                           seconds=length))
            rates.append(stats.throughput())
            return stats, {}
        used = beats[:concurrency]  # connection i drives TI i (len(beats) >= concurrency)
        rate = max(rates, default=DEFAULT_RATE)
        per_ti = max(POOL_FLOOR, math.ceil(rate * length * 2 / concurrency))
        started = time.perf_counter()
        for beat in used:
            beat.refill(per_ti)
        signing = time.perf_counter() - started
        time.sleep(0.5)  # the signing used a core: let the machine settle
        counters = Counters()
        stats = uvloop.run(loadgen.run(target.port, dpop_scenario(used, counters),
                                       concurrency=concurrency, seconds=length))
        for beat in used:
            beat.pool = []  # unsent proofs are dropped; the next run signs new ones
        return stats, {"proofs_signed": per_ti * len(used), "signing_seconds": round(signing, 2),
                       "ran_out": counters.ran_out, "refreshed": counters.refreshed}

    for side in SIDES:  # warm-up, not recorded; a wrong proof shows here, not in the table
        stats, _ = run(side, max(concurrencies), 1.0)
        if stats.errors:
            raise SystemExit(f"warm-up {side}: {dict(stats.errors)}")
        time.sleep(0.5)

    results: dict[str, dict] = {}
    for concurrency in concurrencies:
        runs: dict[str, list[loadgen.RunStats]] = {side: [] for side in SIDES}
        pools: list[dict] = []
        for repeat in range(repeats):
            for side in SIDES if repeat % 2 == 0 else SIDES[::-1]:
                stats, pool = run(side, concurrency, seconds)
                runs[side].append(stats)
                if pool:
                    pools.append(pool)
                time.sleep(0.5)
        row = {side: summarize(runs[side], "heartbeat") for side in SIDES}
        bearer_med = row["bearer"]["throughput"]["median"]
        row["dpop/bearer"] = row["dpop"]["throughput"]["median"] / bearer_med
        row["paired dpop/bearer"] = statistics.median(
            d["throughput"] / b["throughput"]
            for d, b in zip(row["dpop"]["runs"], row["bearer"]["runs"]) if b["throughput"])
        row["pools"] = pools
        row["ran_out"] = sum(p["ran_out"] for p in pools)
        results[str(concurrency)] = row
        print(f"  c={concurrency:<3} bearer {bearer_med:>8.1f}/s  "
              f"dpop {row['dpop']['throughput']['median']:>8.1f}/s  "
              f"paired {row['paired dpop/bearer']:.1%}  ran out {row['ran_out']}  "
              f"errors {row['bearer']['errors']}/{row['dpop']['errors']}", flush=True)
    return results


# where the time goes, in-process -------------------------------------------------------


def _per_call_us(fn, number: int, repeats: int = 5) -> float:
    return round(min(timeit.repeat(fn, number=number, repeat=repeats)) / number * 1e6, 1)


def verify_breakdown() -> dict[str, float]:
    """µs per call of ``verify_proof`` on a real proof, and of its parts."""
    key = ProofKey()
    token = jwt.encode({"sub": str(uuid.uuid4()), "cnf": {"jkt": "x"}}, "k" * 32)
    url = f"{HOST_URL}/execution/task-instances/{uuid.uuid4()}/heartbeat"
    ath = access_token_hash(token)
    proof = key.proof("PUT", url, ath)
    jkt = proofs.jwk_thumbprint(key.jwk)
    segment = proof[: proof.index(".")]
    header = proofs._header(segment)
    public, _ = proofs._public_key(header, "EdDSA")
    signing_input, _, signature = proof.rpartition(".")
    raw_signature = base64.urlsafe_b64decode(signature + "==")
    verifier = key.private.public_key()

    def whole() -> None:
        verify_proof(proof, method="PUT", url=url, now=time.time(), access_token=token,
                     expected_jkt=jkt)

    def first_of_its_key() -> None:
        proofs._proof_key.cache_clear()
        whole()

    n = 2000
    return {
        "sign a proof (load side)": _per_call_us(lambda: key.proof("PUT", url, ath), n),
        "verify_proof, whole (key seen before)": _per_call_us(whole, n),
        "verify_proof, whole (first proof of a key)": _per_call_us(first_of_its_key, n),
        "  size, alphabet": _per_call_us(lambda: proofs._checked_proof(proof), n),
        "  header: base64 + JSON (first of a key)": _per_call_us(
            lambda: proofs._header(segment), n),
        "  key: checks, thumbprint, PyJWK (first of a key)": _per_call_us(
            lambda: proofs._public_key(header, "EdDSA"), n),
        "    thumbprint alone": _per_call_us(lambda: proofs.jwk_thumbprint(key.jwk), n),
        "  signature + claims JSON": _per_call_us(
            lambda: proofs._payload(proof, public, "EdDSA"), n),
        "    Ed25519 verify alone": _per_call_us(
            lambda: verifier.verify(raw_signature, signing_input.encode()), n),
        "  htu normalization": _per_call_us(lambda: proofs.normalize_htu(url), n),
        "  ath: SHA-256 of the token": _per_call_us(lambda: access_token_hash(token), n),
    }


async def _first_use(env: dict[str, str], calls: int, batch: int) -> dict[str, float]:
    async with AsyncExitStack() as stack:
        runtime = await stack.enter_async_context(migrated_runtime(env))
        jkt = proofs.jwk_thumbprint(ProofKey().jwk)
        expires = datetime.now(UTC) + timedelta(seconds=75)

        async def one() -> bool:
            return await dpop_replay.first_use(runtime.writes, jkt=jkt, jti=uuid.uuid4().hex,
                                               expires_at=expires)

        for _ in range(50):  # warm the connection and statement caches
            await one()
        started = time.perf_counter()
        for _ in range(calls):
            assert await one()
        alone = (time.perf_counter() - started) / calls
        started = time.perf_counter()
        for _ in range(calls // batch):
            assert all(await asyncio.gather(*(one() for _ in range(batch))))
        together = (time.perf_counter() - started) / (calls // batch * batch)
        return {"one at a time, µs per record": round(alone * 1e6, 1),
                f"{batch} at once, µs per record": round(together * 1e6, 1)}


def replay_breakdown(backend: str, calls: int = 640, batch: int = 64) -> dict[str, float]:
    """µs per ``first_use`` record on a fresh database of ``backend``."""
    env = {"TASKGATE_DATA_DIR": tempfile.mkdtemp(prefix="taskgate-bench-")}
    with ExitStack() as stack:
        if backend == "postgresql":
            dsn = stack.enter_context(postgres_database())
            env["TASKGATE_DATABASE_URL"] = dsn.replace("postgresql://", "postgresql+asyncpg://", 1)
        return asyncio.run(_first_use(env, calls, batch))


# ----------------------------------------------------------------------------------------


def print_table(report: dict) -> None:
    print()
    print(f"{'backend':<11} {'c':>3} {'bearer req/s':>13} {'DPoP req/s':>11} {'DPoP/bearer':>12} "
          f"{'paired':>7} {'p99 bearer ms':>14} {'p99 DPoP ms':>12} {'ran out':>8}")
    for backend, by_conc in report["backends"].items():
        for concurrency, row in by_conc.items():
            b, d = row["bearer"], row["dpop"]
            print(f"{backend:<11} {concurrency:>3} {b['throughput']['median']:>13.1f} "
                  f"{d['throughput']['median']:>11.1f} {row['dpop/bearer']:>12.1%} "
                  f"{row['paired dpop/bearer']:>7.1%} {b['p99_ms']['median']:>14.2f} "
                  f"{d['p99_ms']['median']:>12.2f} {row['ran_out']:>8}")
    print()
    print("server time per heartbeat (1 / median req/s), µs:")
    for backend, by_conc in report["backends"].items():
        for concurrency, row in by_conc.items():
            b = 1e6 / row["bearer"]["throughput"]["median"]
            d = 1e6 / row["dpop"]["throughput"]["median"]
            print(f"  {backend:<11} c={concurrency:<3} bearer {b:>7.1f}  DPoP {d:>7.1f}  "
                  f"extra {d - b:>7.1f}")
    print("\nin-process, µs per call (best of 5):")
    for name, value in report["breakdown"]["verify_proof"].items():
        print(f"  {name:<40} {value:>8.1f}")
    for backend, figures in report["breakdown"]["first_use"].items():
        for name, value in figures.items():
            print(f"  first_use {backend:<11} {name:<29} {value:>8.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"],
                        choices=["sqlite", "postgresql"])
    options = parser.parse_args()
    running = max(options.concurrency)  # one TI per connection, on each side

    backends: dict[str, dict] = {}
    first_use: dict[str, dict] = {}
    for backend in options.backends:
        if backend == "postgresql" and not postgres_reachable():
            print("postgresql: not reachable, skipped")
            continue
        print(f"{backend}:", flush=True)
        with taskgate(backend, running, 0, n_bound=running, bind=bind) as target:
            beats = [BoundBeat(ti, key) for ti, key in target.bound]
            backends[backend] = measure(target, beats, options.concurrency, options.seconds,
                                        options.repeats)
        first_use[backend] = replay_breakdown(backend)
    report = {
        "benchmark": "dpop",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "seconds": options.seconds, "repeats": options.repeats,
        "concurrency": options.concurrency,
        "backends": backends,
        "breakdown": {"verify_proof": verify_breakdown(), "first_use": first_use},
    }
    print_table(report)
    print(f"\nwrote {write_result('dpop', report)}")


if __name__ == "__main__":
    main()
