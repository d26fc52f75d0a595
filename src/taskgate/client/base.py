"""What ``Client`` and ``AsyncClient`` share: the routes, the token and the retry policy."""

from __future__ import annotations

from taskgate.client.retry import RetryPolicy
from taskgate.client.routes import ExecutionRoutes
from taskgate.client.token import TokenHolder


class BaseClient(ExecutionRoutes):
    def __init__(self, token: str | None, retry: RetryPolicy | None) -> None:
        self._token = TokenHolder(token)
        self.retry = retry or RetryPolicy()

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
