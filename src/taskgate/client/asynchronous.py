"""``AsyncClient``: the asyncio twin of ``Client``: same arguments, same methods, awaited."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from taskgate.client.base import BaseClient
from taskgate.client.exchange import Call, run_async


class AsyncClient(BaseClient):
    http_class = httpx.AsyncClient

    async def _call(self, call: Call[Any]) -> Any:
        return await run_async(self._http, self._exchange(call))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
