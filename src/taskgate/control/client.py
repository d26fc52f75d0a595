"""``ControlClient`` (blocking) and ``AsyncControlClient`` (asyncio): the same methods
(``taskgate.control.calls``), the same requests and answers (``taskgate.client.exchange``,
``taskgate.control.feed``); they differ only in how they send and wait."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import Any, ClassVar

import httpx

import taskgate
from taskgate.client.exchange import Call, exchange, run_async, run_blocking
from taskgate.client.options import http_options
from taskgate.client.retry import RetryPolicy
from taskgate.client.token import TokenHolder
from taskgate.control.calls import ControlCalls
from taskgate.control.feed import EventFeed
from taskgate.control.models import Event

CONTROL_PREFIX = "/control/v1"
USER_AGENT = f"taskgate-control/{taskgate.__version__}"


def control_url(server: str) -> str:
    """The control API's base URL on ``server`` (``https://host/``; a URL that already
    ends in ``/control/v1`` is taken as it is)."""
    base = server.rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {server!r}")
    return base if base.endswith(CONTROL_PREFIX) else base + CONTROL_PREFIX


class _BaseControlClient(ControlCalls):
    http_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]

    def __init__(
        self,
        server: str,
        key: str,
        *,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """Call the control API of ``server`` (``https://host/``) with the operator
        ``key``. ``timeout`` in seconds or as ``httpx.Timeout`` (default 15 s, 5 s to
        connect); ``retry``: how calls that may be repeated are retried after no answer
        or a 5xx (default ``RetryPolicy()``)."""
        # The key never changes; the holder is what ``exchange`` reads the bearer from.
        self._key = TokenHolder(key)
        self.retry = retry or RetryPolicy()
        self._http: Any = self.http_class(
            **http_options(control_url(server), timeout, transport, user_agent=USER_AGENT)
        )

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def _exchange(self, call: Call[Any]) -> Any:
        return exchange(self._http, call, self._key, self.retry)

    def _feed(self, after: int | None, dag_id: str | None) -> EventFeed:
        assert self._key.current is not None
        return EventFeed(self._key.current, after, dag_id)


class ControlClient(_BaseControlClient):
    """The control API, blocking. Safe to share between threads."""

    http_class = httpx.Client

    def _call(self, call: Call[Any]) -> Any:
        return run_blocking(self._http, self._exchange(call))

    def events(self, after: int | None = None, dag_id: str | None = None) -> Iterator[Event]:
        """Every event after ``after`` (None: from the oldest the server keeps), then
        each new one as it happens, for ever. A dropped connection or a restarting server
        is reconnected to, resuming after the last event yielded: none is lost or
        repeated. A resume point older than the retention raises ``ApiError`` with reason
        ``events_expired`` (410)."""
        feed = self._feed(after, dag_id)
        while True:
            try:
                response = self._http.send(feed.request(self._http), stream=True)
            except httpx.TransportError:
                time.sleep(feed.backoff())
                continue
            try:
                if response.status_code != 200:
                    response.read()
                if feed.opened(response):
                    for line in response.iter_lines():
                        if (event := feed.line(line)) is not None:
                            yield event
            except httpx.TransportError:
                pass  # the connection dropped: reconnect below
            finally:
                response.close()
            time.sleep(feed.backoff())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class AsyncControlClient(_BaseControlClient):
    """The control API on asyncio: ``ControlClient``'s methods, awaited."""

    http_class = httpx.AsyncClient

    async def _call(self, call: Call[Any]) -> Any:
        return await run_async(self._http, self._exchange(call))

    async def events(
        self, after: int | None = None, dag_id: str | None = None
    ) -> AsyncIterator[Event]:
        """``ControlClient.events``, as an async iterator."""
        feed = self._feed(after, dag_id)
        while True:
            try:
                response = await self._http.send(feed.request(self._http), stream=True)
            except httpx.TransportError:
                await asyncio.sleep(feed.backoff())
                continue
            try:
                if response.status_code != 200:
                    await response.aread()
                if feed.opened(response):
                    async for line in response.aiter_lines():
                        if (event := feed.line(line)) is not None:
                            yield event
            except httpx.TransportError:
                pass
            finally:
                await response.aclose()
            await asyncio.sleep(feed.backoff())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncControlClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
