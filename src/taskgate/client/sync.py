"""``Client``: the blocking Execution API client (safe to share between threads)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from taskgate.client.base import BaseClient
from taskgate.client.exchange import Call, run_blocking


class Client(BaseClient):
    http_class = httpx.Client

    def _call(self, call: Call[Any]) -> Any:
        return run_blocking(self._http, self._exchange(call))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
