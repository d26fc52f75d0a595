"""What ``Client`` and ``AsyncClient`` share: construction, the routes, the token, the
DPoP key and the retry policy. They differ only in how they send a request and wait."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, ClassVar

import httpx

from taskgate.client.dpop import DPoPKey, dpop_key
from taskgate.client.exchange import Call, Outcome, Step, exchange
from taskgate.client.options import api_url, http_options
from taskgate.client.retry import RetryPolicy
from taskgate.client.routes import ExecutionRoutes
from taskgate.client.token import TokenHolder


class BaseClient(ExecutionRoutes):
    http_class: ClassVar[type[httpx.Client] | type[httpx.AsyncClient]]

    def __init__(
        self,
        base_url: str | None = None,
        *,
        token: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
        dpop: bool | DPoPKey = True,
    ) -> None:
        """Call the Execution API at ``base_url`` (default: ``$TASKGATE_API_URL``, else
        ``http://127.0.0.1:8080/execution``; it includes ``/execution``) with ``token``.
        ``timeout`` in seconds or as ``httpx.Timeout``; ``retry`` for idempotent calls;
        ``transport`` replaces the network (``taskgate.client.in_process``). ``dpop``:
        True generates a DPoP key in memory and proves it on every request, so ``run``
        gets an execution token bound to it; a ``DPoPKey`` shares one key between
        clients; False sends bearer tokens only."""
        self._token = TokenHolder(token)
        self._dpop = dpop_key(dpop)
        self.retry = retry or RetryPolicy()
        self._http: Any = self.http_class(**http_options(api_url(base_url), timeout, transport))

    @property
    def base_url(self) -> str:
        return str(self._http.base_url)

    @property
    def dpop_key(self) -> DPoPKey | None:
        """The key this client proves on every request (None: bearer tokens only)."""
        return self._dpop

    @property
    def token(self) -> str | None:
        """The token the next call sends: the newest one received."""
        return self._token.current

    @token.setter
    def token(self, value: str | None) -> None:
        self._token.replace(value)

    @property
    def token_refreshes(self) -> int:
        """How many times the server handed out a fresh execution token (the ``/run``
        exchange of a workload token does not count)."""
        return self._token.refreshes

    def _exchange(self, call: Call[Any]) -> Generator[Step, Outcome, Any]:
        return exchange(self._http, call, self._token, self.retry, dpop=self._dpop)

    def __repr__(self) -> str:
        key = "off" if self._dpop is None else self._dpop.thumbprint
        return f"{type(self).__name__}({self.base_url!r}, dpop={key})"
