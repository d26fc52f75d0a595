"""``AsyncClient``: the asyncio Execution API client. Every route method is awaited."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from taskgate.client.base import BaseClient
from taskgate.client.exchange import Call, Outcome, Step, exchange
from taskgate.client.options import http_options
from taskgate.client.retry import RetryPolicy


class AsyncClient(BaseClient):
    """The async twin of ``Client``: same arguments, same methods, awaited.
    ``transport`` replaces the network (``taskgate.client.in_process``)."""

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(token, retry)
        self._http = httpx.AsyncClient(**http_options(base_url, timeout, transport))

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    async def _call(self, call: Call[Any]) -> Any:
        steps = exchange(self._http, call, self._token, self.retry)
        outcome: Outcome = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value
            outcome = await self._perform(step)

    async def _perform(self, step: Step) -> Outcome:
        if isinstance(step, httpx.Request):
            try:
                return await self._http.send(step)
            except httpx.TransportError as exc:
                return exc
        await asyncio.sleep(step)
        return None

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
