"""How long a `taskgate` command takes, end to end, as a user's shell runs it.

Median of N runs (default 10) of each: `taskgate --help`, `taskgate events --help`, a
remote command (`dags list --json` against a `taskgate serve` it starts on 127.0.0.1, with
an operator key, from a directory without a database), and a local read (`ti list --json`
on a temporary SQLite database holding one run). One warm-up run of each comes first.

Python's bytecode cache matters here: an installed package has its .pyc files, a
checkout run with PYTHONDONTWRITEBYTECODE=1 compiles taskgate's sources on every start.
By default the runs use a bytecode cache in a temporary directory (PYTHONPYCACHEPREFIX),
as an installed package would; --no-bytecode-cache measures the other case.

    python bench/cli_startup.py [--runs 10] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from common import write_result  # noqa: E402
from server_process import free_port, stop, wait_healthy  # noqa: E402

TASKGATE = [sys.executable, "-m", "taskgate"]


def timed(args: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run([*TASKGATE, *args], env=env, cwd=cwd, capture_output=True,
                            text=True, timeout=120)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"taskgate {' '.join(args)} failed: {result.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-bytecode-cache", action="store_true")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base = {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", tmp)}
        if options.no_bytecode_cache:
            base["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            base["PYTHONPYCACHEPREFIX"] = str(root / "pycache")
        local = {**base, "TASKGATE_DATA_DIR": str(root / "data")}
        subprocess.run([*TASKGATE, "dags", "add", "bench"], env=local, check=True,
                       capture_output=True)
        subprocess.run([*TASKGATE, "runs", "create", "bench", "r1", "--task", "a", "--task",
                        "b"], env=local, check=True, capture_output=True)
        made = subprocess.run([*TASKGATE, "operators", "add", "bench", "--role", "reader",
                               "--json"], env=local, check=True, capture_output=True, text=True)
        port = free_port()
        server = subprocess.Popen([*TASKGATE, "serve", "--port", str(port), "--no-access-log"],
                                  env=local, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(f"http://127.0.0.1:{port}/execution/health", server)
            remote = {**base, "TASKGATE_SERVER": f"http://127.0.0.1:{port}",
                      "TASKGATE_OPERATOR_KEY": json.loads(made.stdout)["key"]}
            elsewhere = root / "elsewhere"
            elsewhere.mkdir()
            cases = {
                "taskgate --help": (["--help"], base, elsewhere),
                "taskgate events --help": (["events", "--help"], base, elsewhere),
                "remote: dags list --json": (["dags", "list", "--json"], remote, elsewhere),
                "local: ti list --json (SQLite)": (["ti", "list", "--json"], local, root),
            }
            medians: dict[str, float] = {}
            for name, (args, env, cwd) in cases.items():
                timed(args, env, cwd)  # warm-up: the bytecode cache, the page cache
                runs = [timed(args, env, cwd) for _ in range(options.runs)]
                medians[name] = statistics.median(runs)
        finally:
            stop(server)

    cache = "off" if options.no_bytecode_cache else "on"
    print(f"CLI start-up, median of {options.runs} runs (bytecode cache {cache})")
    print(f"{'command':<34} {'seconds':>8}")
    for name, seconds in medians.items():
        print(f"{name:<34} {seconds:>8.3f}")
    path = write_result(f"cli_startup_cache_{cache}",
                        {"runs": options.runs, "bytecode_cache": cache, "median_s": medians})
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
