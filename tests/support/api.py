"""Request bodies, bearer headers, hand-signed tokens and ``/metrics`` samples."""

from __future__ import annotations

import re
from typing import Any

import jwt

from taskgate.runtime import Runtime

RUN_BODY = {
    "state": "running",
    "hostname": "worker-1",
    "unixname": "tester",
    "pid": 4242,
    "start_date": "2026-01-01T00:00:00Z",
}
BEAT_BODY = {"hostname": "worker-1", "pid": 4242}
SUCCESS_BODY = {"state": "success", "end_date": "2026-01-01T00:05:00Z"}


def signed(runtime: Runtime, payload: dict[str, Any], **headers: Any) -> str:
    """``payload`` as a JWT signed with the runtime's signing key (any claims, for tests
    of what the validator and the security layers make of them)."""
    key = runtime.keys.signing
    assert key is not None, "the runtime has no signing key"
    return jwt.encode(payload, key.key, algorithm=key.algorithm, headers={"kid": key.kid, **headers})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def gauge(metrics: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text that ``/metrics`` answered: unlabelled, or the
    one with exactly ``labels`` (0 when a labelled counter has no such sample yet)."""
    if not labels:
        match = re.search(rf"^{name} (\S+)$", metrics, re.MULTILINE)
        assert match, f"{name} not in /metrics"
        return float(match.group(1))
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    match = re.search(rf"^{name}\{{{re.escape(wanted)}\}} (\S+)$", metrics, re.MULTILINE)
    return float(match.group(1)) if match else 0.0
