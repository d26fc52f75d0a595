"""``run_in_greenlet``: SQLAlchemy's async-to-sync bridge with greenlets kept for reuse.
It must behave as ``greenlet_spawn`` does (results, exceptions, waiting, cancellation,
context variables) while a finished call's greenlet serves the next one."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest
from greenlet import getcurrent, greenlet
from sqlalchemy.util import await_only

from taskgate.db import greenlets
from taskgate.db.greenlets import run_in_greenlet

REQUEST = contextvars.ContextVar("request", default=None)


async def _value_later(value: object) -> object:
    await asyncio.sleep(0)
    return value


def _waits_for(value: object) -> tuple[object, greenlet]:
    """Sync code that waits for a coroutine, as SQLAlchemy's pool does."""
    return await_only(_value_later(value)), getcurrent()


async def test_a_finished_calls_greenlet_runs_the_next_call():
    first, ran_in = await run_in_greenlet(_waits_for, "a")
    second, ran_in_again = await run_in_greenlet(_waits_for, "b")
    assert (first, second) == ("a", "b")
    assert ran_in is ran_in_again
    assert ran_in is not getcurrent()


async def test_an_exception_reaches_the_caller_and_the_greenlet_serves_on():
    def fails() -> None:
        await_only(asyncio.sleep(0))
        raise LookupError("from the sync side")

    with pytest.raises(LookupError, match="from the sync side"):
        await run_in_greenlet(fails)
    assert (await run_in_greenlet(_waits_for, "after"))[0] == "after"


async def test_concurrent_calls_each_get_a_greenlet_of_their_own():
    release = asyncio.Event()

    def parked(name: str) -> tuple[str, greenlet]:
        await_only(release.wait())
        return name, getcurrent()

    calls = [asyncio.create_task(run_in_greenlet(parked, n)) for n in "xyz"]
    await asyncio.sleep(0.01)
    release.set()
    answers = await asyncio.gather(*calls)
    assert [name for name, _ in answers] == ["x", "y", "z"]
    assert len({id(g) for _, g in answers}) == 3


async def test_a_cancelled_caller_cancels_the_wait_inside_and_nothing_is_left_half_done():
    seen: list[str] = []
    entered = asyncio.Event()

    def waits_long() -> None:
        entered.set()
        try:
            await_only(asyncio.sleep(30))
        except asyncio.CancelledError:
            seen.append("cancelled inside")  # where the pool would invalidate a connection
            raise
        finally:
            seen.append("finally")

    task = asyncio.create_task(run_in_greenlet(waits_long))
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert seen == ["cancelled inside", "finally"]
    assert (await run_in_greenlet(_waits_for, "next"))[0] == "next"


async def test_the_call_sees_its_callers_context_variables_and_no_one_elses():
    def read() -> object:
        return REQUEST.get()

    async def in_request(name: str) -> object:
        REQUEST.set(name)
        return await run_in_greenlet(read)

    assert await asyncio.create_task(in_request("first")) == "first"
    # The same greenlet serves a caller with another context: it sees that one.
    assert await asyncio.create_task(run_in_greenlet(read)) is None
    assert await asyncio.create_task(in_request("second")) == "second"


def test_a_greenlet_is_reused_only_by_callers_in_the_greenlet_that_made_it():
    # In a thread of its own: an event loop run inside a greenlet, then one in the
    # thread's main greenlet. The second must not get the first one's greenlet, whose
    # parent (where await_only would switch to) is that other, finished greenlet.
    async def call() -> tuple[object, greenlet]:
        return await run_in_greenlet(_waits_for, "value")

    ran: dict[str, tuple[object, greenlet]] = {}

    def in_thread() -> None:
        ran["in a greenlet"] = greenlet(lambda: asyncio.run(call())).switch()
        ran["in the main greenlet"] = asyncio.run(call())

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join(10)
    (first, worker), (second, other) = ran["in a greenlet"], ran["in the main greenlet"]
    assert first == second == "value"
    assert other is not worker
    assert other.parent is not None and other.parent.parent is None  # the main greenlet's


async def test_idle_greenlets_are_bounded(monkeypatch):
    monkeypatch.setattr(greenlets, "KEEP", 2)
    monkeypatch.setattr(greenlets._local, "idle", [], raising=False)  # none kept from before
    release = asyncio.Event()

    def parked() -> None:
        await_only(release.wait())

    calls = [asyncio.create_task(run_in_greenlet(parked)) for _ in range(5)]
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(*calls)
    assert len(greenlets._local.idle) == 2  # five finished, two kept
