"""Domain errors raised by the services and mapped to HTTP answers by the API layer.

Each carries a machine-readable ``reason`` and a human ``message``; extra fields (such as
``previous_state``) travel with them into ``{"detail": {...}}``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from taskgate.tokens import Refusal


class ServiceError(Exception):
    def __init__(self, reason: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.extra = extra

    @property
    def detail(self) -> dict[str, Any]:
        return {"reason": self.reason, "message": self.message, **self.extra}

    @property
    def code(self) -> str:
        """The stable reason code for the ``Taskgate-Reason`` header: ``reason``, unless
        a subclass knows a finer one."""
        return self.reason


class NotFound(ServiceError):
    """The thing asked for does not exist (404)."""


class Gone(ServiceError):
    """What was asked for is no longer kept (410)."""


class Conflict(ServiceError):
    """The request does not fit the current state (409)."""


class AccessDenied(ServiceError):
    """The access policy refuses this task instance (403). ``rule`` names the rule that
    refused (``other_team``, ``other_dag``, ...): the header's code, while the body keeps
    ``reason`` (``access_denied``)."""

    def __init__(self, reason: str, message: str, *, rule: str | None = None, **extra: Any) -> None:
        super().__init__(reason, message, **extra)
        self.rule = rule

    @property
    def code(self) -> str:
        return self.rule or self.reason


class InvalidRequest(ServiceError):
    """A request that cannot be served as asked (400)."""


class InvalidInput(ServiceError):
    """Well-formed but unacceptable input (422 over HTTP, exit 2 on the CLI)."""


class Unavailable(ServiceError):
    """This node cannot do it now (503)."""


class TokenRefused(ServiceError):
    """The token the request came with no longer counts, as a service found out in its
    own write (the heartbeat's revocation check, a workload token spent by a concurrent
    /run): answered exactly as the security layers answer that ``refusal``."""

    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.client_reason or refusal.code, refusal.message)
        self.refusal = refusal
