"""A request's database deadline, as the layers below the API see it: a commit is never
cut off.

``api.middleware.deadline`` answers 503 ``database_timeout`` and cancels a request whose
database work overruns. That is right while nothing is written: the client sends the
request again. It is wrong once the request's change has committed, or while its commit
is on the wire (a cancelled commit may still land): a 503 would say "try again" about work
that was done, and for ``/run``, which spends the single-use workload token, the answer
the worker needs (its execution token) would be lost. So every session's commit runs
inside ``committing()`` (``db.session``): the deadline waits for the commit (bounded by
the database's own timeouts), and once it has landed the request runs to its answer,
however late. A commit that fails lets a deadline that passed meanwhile answer at once.
Outside a request (the CLI, in-process mode) ``committing`` does nothing.

The context holds the guard by a weak reference: every future and callback made during
the request copies the context, and a strong one would tie each of them to the request
and its task in a cycle, left for the garbage collector.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar, Token
from typing import Protocol


class Guard(Protocol):
    """One request's deadline (``api.middleware.deadline``)."""

    def hold(self) -> None:
        """A commit is on its way: a deadline that passes now waits for it."""

    def release(self, committed: bool) -> None:
        """The commit landed (no deadline from here on), or failed."""


_guard: ContextVar[weakref.ref[Guard] | None] = ContextVar("request_deadline", default=None)


def guarded_by(guard: Guard) -> Token[weakref.ref[Guard] | None]:
    """Called by the deadline middleware at a request's start; ``release`` the token at
    its end."""
    return _guard.set(weakref.ref(guard))


def release(token: Token[weakref.ref[Guard] | None]) -> None:
    _guard.reset(token)


@asynccontextmanager
async def committing() -> AsyncIterator[None]:
    """Around a change's commit: the request's deadline does not cut it off."""
    held = _guard.get()
    guard = held() if held is not None else None
    if guard is None:
        yield
        return
    guard.hold()
    committed = False
    try:
        yield
        committed = True
    finally:
        guard.release(committed)
