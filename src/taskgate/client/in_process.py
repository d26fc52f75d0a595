"""In-process mode: the real app, served without a network, with authentication on.

Requests go through ``httpx.ASGITransport`` into the application ``create_app`` builds
for a runtime, so bearer validation, DPoP proofs (their ``htu`` is ``IN_PROCESS_URL`` plus
the path, the URL the app sees), ``require_auth``, the token gate, the access policy and
the re-issue step all run, exactly as behind uvicorn. Tokens are real: minted with the
runtime's signing key (``taskgate ti queue``, ``InProcessServer.mint``, the ``/run``
exchange). Nothing is switched off; only the socket is left out.

- async code: ``in_process_transport(runtime)`` serves the app on the caller's event loop;
  give it to ``AsyncClient(IN_PROCESS_URL, transport=...)``.
- blocking code: ``InProcessServer(runtime)`` runs the app on a private event loop in a
  background thread (an anyio blocking portal) and bridges each request to it; its
  ``client()`` is a ``Client`` that threads may share.

This module imports the server (FastAPI app, database) when used, never on
``import taskgate.client``.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from taskgate.client.asynchronous import AsyncClient
from taskgate.client.sync import Client
from taskgate.wire.http import EXECUTION_PREFIX

if TYPE_CHECKING:
    import uuid

    from anyio.from_thread import BlockingPortal

    from taskgate.runtime import Runtime
    from taskgate.tokens import TokenType

# A name that cannot resolve: in-process requests never leave the process.
IN_PROCESS_URL = f"http://taskgate.in-process{EXECUTION_PREFIX}"


def in_process_transport(runtime: Runtime) -> httpx.ASGITransport:
    """The app for ``runtime`` as an async transport, on the current event loop. The
    runtime's database must be prepared (``await runtime.prepare_database()``)."""
    from taskgate.api.app import create_app

    return httpx.ASGITransport(app=create_app(runtime))


def in_process_client(runtime: Runtime, *, token: str | None = None, **options: Any) -> AsyncClient:
    return AsyncClient(IN_PROCESS_URL, token=token, transport=in_process_transport(runtime), **options)


class PortalTransport(httpx.BaseTransport):
    """The sync bridge: each request is handed to an async transport running on a
    blocking portal's event loop, and the whole answer is read there."""

    def __init__(self, transport: httpx.AsyncBaseTransport, portal: BlockingPortal) -> None:
        self._transport = transport
        self.portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=request.read()
        )

        async def send() -> tuple[int, httpx.Headers, bytes]:
            response = await self._transport.handle_async_request(forwarded)
            try:
                return response.status_code, response.headers, await response.aread()
            finally:
                await response.aclose()

        status, headers, content = self.portal.call(send)
        return httpx.Response(status, headers=headers, content=content, request=request)


class InProcessServer:
    """The app for ``runtime`` on a private event loop in a background thread.

    Use it as a context manager: entering prepares the runtime's database (migrating the
    embedded SQLite one) on that loop, leaving closes the runtime there. The runtime must
    not be used on another event loop meanwhile (database connections belong to a loop).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._portal_cm: Any = None
        self._transport: PortalTransport | None = None

    @property
    def transport(self) -> PortalTransport:
        if self._transport is None:
            raise RuntimeError("InProcessServer is not running: use it in a `with` block")
        return self._transport

    def client(self, *, token: str | None = None, **options: Any) -> Client:
        """A blocking client of this server (share it between threads freely)."""
        return Client(IN_PROCESS_URL, token=token, transport=self.transport, **options)

    def mint(self, ti_id: uuid.UUID, token_type: TokenType | None = None) -> str:
        """A real token for ``ti_id``, signed with the runtime's key (execution by default)."""
        from taskgate.tokens import TokenType

        return self.runtime.require_issuer().issue(ti_id, token_type or TokenType.EXECUTION)

    def __enter__(self) -> InProcessServer:
        from anyio.from_thread import start_blocking_portal

        self._portal_cm = start_blocking_portal()
        portal = self._portal_cm.__enter__()
        try:
            portal.call(self.runtime.prepare_database)
        except BaseException:
            self._portal_cm.__exit__(None, None, None)
            raise
        self._transport = PortalTransport(in_process_transport(self.runtime), portal)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._transport is None:
            return
        portal_cm, transport = self._portal_cm, self._transport
        self._portal_cm = self._transport = None
        try:
            transport.portal.call(self.runtime.aclose)
        finally:
            portal_cm.__exit__(None, None, None)
