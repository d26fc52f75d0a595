"""One API call, from request to typed result, written once for the sync and async clients.

``exchange`` is a generator that does no I/O itself: it yields an ``httpx.Request`` to
send (and is sent back the response, or the transport error) or a number of seconds to
wait before the next attempt, and returns the parsed result. The sync client drives it
with blocking calls, the async client with awaits; retries, token pickup, correlation ids,
DPoP proofs and error mapping live here only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import httpx

from taskgate.client.errors import error_from_response, no_answer
from taskgate.client.retry import RetryPolicy
from taskgate.client.token import TokenHolder
from taskgate.wire.http import CORRELATION_ID_HEADER, DPOP_HEADER, REASON_HEADER

if TYPE_CHECKING:  # the control API's client shares this module and signs no proofs
    from taskgate.client.dpop import DPoPKey

T = TypeVar("T")
USE_DPOP_NONCE = "use_dpop_nonce"  # the Taskgate-Reason of a proof without the server's nonce

log = logging.getLogger("taskgate.client")


Step = httpx.Request | float  # send this request / wait this many seconds
Outcome = httpx.Response | httpx.TransportError | None  # None: the wait is over


@dataclass(frozen=True)
class Call(Generic[T]):
    """One route call. ``idempotent`` calls may be sent again after no answer or a 5xx:
    repeating them leaves the server as one call would (see docs/client.md)."""

    method: str
    path: str  # relative to the client's base URL (which ends in /execution)
    parse: Callable[[httpx.Response], T]
    idempotent: bool
    json: Any = None  # None: no body
    params: dict[str, Any] | None = None


def exchange(
    http: httpx.Client | httpx.AsyncClient,
    call: Call[T],
    token: TokenHolder,
    retry: RetryPolicy,
    *,
    dpop: DPoPKey | None = None,
) -> Generator[Step, Outcome, T]:
    # One id for the call, kept across its retries: the server's log lines of every
    # attempt carry it.
    correlation_id = uuid.uuid4().hex
    started = time.monotonic()
    retry_number = 0
    nonce_retried = False
    while True:
        request = http.build_request(
            call.method, call.path, json=call.json, params=call.params,
            headers={CORRELATION_ID_HEADER: correlation_id},
        )
        current, authorization = token.held  # read afresh: another call may refresh it
        if current is not None and authorization is not None:
            authorize(request, current, authorization, dpop)
        outcome = yield request
        if isinstance(outcome, httpx.Response):
            token.pick_up(outcome)
            if dpop is not None and dpop.pick_up_nonce(outcome) and not nonce_retried \
                    and outcome.headers.get(REASON_HEADER) == USE_DPOP_NONCE:
                # The server wants its nonce in the proof, and has just sent it: nothing was
                # done, so the call goes again at once, whatever its kind.
                nonce_retried = True
                continue
            if outcome.status_code < 500:
                if outcome.status_code >= 400:
                    raise error_from_response(outcome, correlation_id)
                return call.parse(outcome)
            failure = error_from_response(outcome, correlation_id)
            retry_after = _seconds(outcome.headers.get("Retry-After"))
        else:
            assert isinstance(outcome, httpx.TransportError)
            failure = no_answer(outcome, _origin(request.url), correlation_id)
            retry_after = None
        elapsed = time.monotonic() - started
        wait = retry.next_delay(retry_number, elapsed, retry_after) if call.idempotent else None
        if wait is None:
            raise failure
        log.warning(
            "%s %s failed (%s); retry %d in %.1f s",
            call.method, request.url.path, failure, retry_number + 1, wait,
            extra={"correlation_id": correlation_id},
        )
        yield wait
        retry_number += 1


def authorize(
    request: httpx.Request, token: str, authorization: str, dpop: DPoPKey | None
) -> None:
    """Put ``token`` on ``request`` (``authorization``: ``DPoP`` when it is bound to a key,
    ``cnf.jkt``, else ``Bearer``; ``TokenHolder.held``); with ``dpop``, add a fresh proof
    of that key for this very request (every attempt gets its own: the server accepts a
    proof once).

    A bound token goes as ``DPoP`` even without the key, or with another one: the server
    then refuses it with the reason (``missing_dpop_proof``, ``key_mismatch``), which says
    more than anything the client could guess.
    """
    request.headers["Authorization"] = authorization
    if dpop is not None:
        target = str(request.url.copy_with(query=None, fragment=None))
        request.headers[DPOP_HEADER] = dpop.proof(request.method, target, token)


def run_blocking(http: httpx.Client, steps: Generator[Step, Outcome, T]) -> T:
    """Drive a call's ``steps`` with blocking I/O: send each request, sleep each wait."""
    try:
        step = next(steps)
        while True:
            outcome: Outcome = None
            if isinstance(step, httpx.Request):
                try:
                    outcome = http.send(step)
                except httpx.TransportError as exc:
                    outcome = exc
            else:
                time.sleep(step)
            step = steps.send(outcome)
    except StopIteration as done:
        return done.value


async def run_async(http: httpx.AsyncClient, steps: Generator[Step, Outcome, T]) -> T:
    """``run_blocking`` on the event loop."""
    try:
        step = next(steps)
        while True:
            outcome: Outcome = None
            if isinstance(step, httpx.Request):
                try:
                    outcome = await http.send(step)
                except httpx.TransportError as exc:
                    outcome = exc
            else:
                await asyncio.sleep(step)
            step = steps.send(outcome)
    except StopIteration as done:
        return done.value


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.netloc.decode('ascii', 'replace')}"


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None  # an HTTP date: ignored, the backoff decides
