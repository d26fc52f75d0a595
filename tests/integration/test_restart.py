"""`taskgate serve` stopped (SIGTERM) and started again while workers are busy.

Workers use taskgate's own client, which retries idempotent calls (heartbeats, variable
reads, XCom pushes, state reports) after no answer or a 5xx; a worker sends ``/run``
again only when the request never reached a server (see ``load.Worker._start``). Every
lifecycle must complete, with the database holding the final state each worker reported.
tests/worker/test_long_running.py covers a crash (SIGKILL) under one `taskgate worker`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time

import httpx
import pytest

from taskgate.client import RetryPolicy
from tests.integration import load
from tests.support.processes import free_port, serve_env, server_output, start_serve

pytestmark = pytest.mark.integration

WORKERS = 30
SECONDS = 12
RETRY = RetryPolicy(attempts=12, first_delay=0.1, max_delay=1.0, deadline=30)


async def test_workers_ride_through_a_restart(settings, runtime, caplog, capsys):
    caplog.set_level(logging.WARNING, "taskgate.client")
    env = serve_env(settings)
    port = free_port()
    server = start_serve(env, port)
    try:
        await load.prepare(runtime)
        soak = asyncio.create_task(
            load.drive(
                f"http://127.0.0.1:{port}/execution", runtime, workers=WORKERS, seconds=SECONDS,
                pacing=load.Pacing(beats=3, beat_interval=(0.5, 1.0)), retry=RETRY,
                timeout=httpx.Timeout(10.0, connect=2.0), rerun_unsent=True,
            )
        )
        await asyncio.sleep(SECONDS / 3)
        stopping = time.monotonic()
        server.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(server.wait, 15)
        assert code == 0, server_output(server)
        stopped_after = time.monotonic() - stopping
        await asyncio.sleep(1)  # down for a moment: calls meet a refused connection
        server = await asyncio.to_thread(start_serve, env, port)
        tally = await asyncio.wait_for(soak, timeout=SECONDS + 60)
    finally:
        server.terminate()
        server.wait(15)

    with capsys.disabled():
        print(f"\nrestart under load: {tally.summary()}; stopped in {stopped_after:.1f} s")
    assert not tally.failures, tally.summary() + "\n" + "\n".join(tally.failures[:20])
    assert stopped_after < 5, stopped_after  # requests in flight are short; none was stuck
    retried = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert retried, "no call met the restart"
    assert len(tally.lifecycles) >= WORKERS
    states = await load.final_states(runtime)
    assert states == {lc.run_id: lc.state for lc in tally.lifecycles}
