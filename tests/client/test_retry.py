"""Retries: idempotent calls only, after no answer or a 5xx, with growing jittered waits;
one correlation id per call. A port nobody listens on, a socket that never answers, and
(for status codes a healthy taskgate does not produce on demand) an httpx stand-in server."""

import logging
import socket
import time
import uuid

import httpx
import pytest

from taskgate.client import Client, RetryPolicy, ServerUnavailable
from tests.support.processes import free_port

FAST = RetryPolicy(attempts=3, first_delay=0.01, max_delay=0.02, deadline=5)
TI = uuid.uuid4()
HOST = {"hostname": "worker-1", "pid": 4242}


def retries_logged(caplog) -> int:
    return sum("retry" in r.getMessage() for r in caplog.records if r.name == "taskgate.client")


def test_no_answer_idempotent_calls_retry_then_fail(caplog):
    caplog.set_level(logging.WARNING, "taskgate.client")
    with Client(f"http://127.0.0.1:{free_port()}/execution", token="t", retry=FAST) as api:
        with pytest.raises(ServerUnavailable) as down:
            api.heartbeat(TI, **HOST)
        assert down.value.status is None and down.value.reason == "ConnectError"
        assert retries_logged(caplog) == 2  # 3 attempts

        caplog.clear()
        with pytest.raises(ServerUnavailable):
            api.run(TI, unixname="tester", **HOST)  # single-use workload token: never repeated
        assert retries_logged(caplog) == 0


def test_a_silent_server_times_out_and_is_retried(caplog):
    caplog.set_level(logging.WARNING, "taskgate.client")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/execution"
        with Client(url, token="t", retry=FAST, timeout=0.2) as api:
            started = time.monotonic()
            with pytest.raises(ServerUnavailable) as slow:
                api.get_variable("k")
    assert slow.value.reason == "ReadTimeout"
    assert retries_logged(caplog) == 2 and time.monotonic() - started < 3


def stand_in(*statuses: int, retry_after: str | None = None):
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = statuses[min(len(seen), len(statuses)) - 1]
        headers = {"Retry-After": retry_after} if retry_after and status == 503 else {}
        body = {"detail": {"reason": "database_unavailable", "message": "down"}}
        return httpx.Response(status, json=body if status >= 500 else None, headers=headers)

    return httpx.MockTransport(answer), seen


def test_5xx_is_retried_with_one_correlation_id_and_retry_after():
    transport, seen = stand_in(503, 503, 204, retry_after="0.3")
    policy = RetryPolicy(attempts=5, first_delay=0.01, max_delay=1.0)
    with Client("http://stand-in/execution", token="t", retry=policy, transport=transport) as api:
        started = time.monotonic()
        api.heartbeat(TI, **HOST)
    assert len(seen) == 3
    assert time.monotonic() - started >= 0.6  # two waits of at least Retry-After
    assert len({r.headers["correlation-id"] for r in seen}) == 1


def test_5xx_on_run_is_not_retried():
    transport, seen = stand_in(503, 200)
    with Client("http://stand-in/execution", token="t", retry=FAST, transport=transport) as api:
        with pytest.raises(ServerUnavailable) as unavailable:
            api.run(TI, unixname="tester", **HOST)
    assert len(seen) == 1
    assert (unavailable.value.status, unavailable.value.reason) == (503, "database_unavailable")


def test_backoff_grows_with_jitter_and_stops_at_the_budget():
    policy = RetryPolicy(attempts=6, first_delay=1.0, max_delay=4.0, deadline=100)
    for retry, cap in [(0, 1.0), (1, 2.0), (2, 4.0), (3, 4.0)]:
        waits = {policy.delay(retry) for _ in range(50)}
        assert all(cap / 2 <= w <= cap for w in waits) and len(waits) > 1
    assert policy.next_delay(5, elapsed=0) is None  # the sixth attempt was the last
    assert policy.next_delay(0, elapsed=99.9) is None  # the wait would cross the deadline
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
