"""``Client``: the blocking Execution API client (safe to share between threads)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import httpx

from taskgate.client.base import BaseClient
from taskgate.client.exchange import Call, Outcome, Step, exchange
from taskgate.client.options import http_options
from taskgate.client.retry import RetryPolicy


class Client(BaseClient):
    """Calls the Execution API at ``base_url`` (default: ``$TASKGATE_API_URL``, else
    ``http://127.0.0.1:8080/execution``) with ``token``, and keeps using the fresh token
    the server hands out. ``transport`` replaces the network (``taskgate.client.in_process``).
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(token, retry)
        self._http = httpx.Client(**http_options(base_url, timeout, transport))

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    def _call(self, call: Call[Any]) -> Any:
        steps = exchange(self._http, call, self._token, self.retry)
        outcome: Outcome = None
        while True:
            try:
                step = steps.send(outcome)
            except StopIteration as done:
                return done.value
            outcome = self._perform(step)

    def _perform(self, step: Step) -> Outcome:
        if isinstance(step, httpx.Request):
            try:
                return self._http.send(step)
            except httpx.TransportError as exc:
                return exc
        time.sleep(step)
        return None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
