"""What the bench scripts share: the task instances they drive, the request bodies a
worker sends, and where results are written.

Every server under test is prepared so that its running TIs were started with
``RUN_BODY`` (hostname ``HOSTNAME``, pid ``PID``): ``BEAT_BODY`` is their heartbeat.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
PING_PATH = "/execution/health/ping"  # unauthenticated, on taskgate and Airflow alike
HOSTNAME, PID = "bench", 1
RUN_BODY = {"state": "running", "hostname": HOSTNAME, "unixname": "bench", "pid": PID,
            "start_date": "2026-01-01T00:00:00Z"}
BEAT_BODY = {"hostname": HOSTNAME, "pid": PID}
SUCCESS_BODY = {"state": "success", "end_date": "2026-01-01T00:01:00Z"}
VARIABLE_KEY = "bench_variable"
# Token lifetime on both servers (execution and workload tokens alike). The servers take
# turns over a whole run of compare.py, so the tokens prepared at its start must outlive
# it; at the shipped 10 min some would expire mid-run. Either way no token is near its end
# during a measured run, so neither server re-issues one and no request costs more.
TOKEN_LIFETIME_SECONDS = 7200


@dataclass
class TI:
    id: str
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    token: str  # execution token for running TIs, workload token for queued ones


def write_result(name: str, data: dict[str, Any]) -> Path:
    """``data`` as ``results/<name>.json``; its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def microseconds(runs: dict[str, list[float]]) -> dict[str, list[float]]:
    """Per-run seconds as microseconds, rounded for the JSON."""
    return {name: [round(v * 1e6, 1) for v in values] for name, values in runs.items()}
