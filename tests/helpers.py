"""Request bodies and headers the tests share."""

RUN_BODY = {
    "state": "running",
    "hostname": "worker-1",
    "unixname": "tester",
    "pid": 4242,
    "start_date": "2026-01-01T00:00:00Z",
}
BEAT_BODY = {"hostname": "worker-1", "pid": 4242}
SUCCESS_BODY = {"state": "success", "end_date": "2026-01-01T00:05:00Z"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
