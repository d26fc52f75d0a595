"""``AsyncClient``: the asyncio twin of ``Client``: same arguments, same methods, awaited."""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import httpx

from taskgate.client.base import BaseClient
from taskgate.client.exchange import Call, Outcome, Step


class AsyncClient(BaseClient):
    http_class = httpx.AsyncClient

    async def _call(self, call: Call[Any]) -> Any:
        steps = self._exchange(call)
        try:
            step = next(steps)
            while True:
                step = steps.send(await self._perform(step))
        except StopIteration as done:
            return done.value

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
