"""``Client``: the blocking Execution API client (safe to share between threads)."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

import httpx

from taskgate.client.base import BaseClient
from taskgate.client.exchange import Call, Outcome, Step


class Client(BaseClient):
    http_class = httpx.Client

    def _call(self, call: Call[Any]) -> Any:
        steps = self._exchange(call)
        try:
            step = next(steps)
            while True:
                step = steps.send(self._perform(step))
        except StopIteration as done:
            return done.value

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
