"""A TCP proxy on 127.0.0.1 that can break the network between taskgate and its
database on command: refuse connections, or stall (hold every byte, as a dropped route
or a failover does) new connections or all of them.

It runs its own event loop in a thread, so a test's blocking calls (restarting
PostgreSQL) do not stall it by accident, and its methods may be called from any thread.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable
from typing import Any, Self


class FaultProxy:
    def __init__(self, upstream_port: int) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._stall_new = False
        self._stall_all: asyncio.Event | None = None  # cleared while everything stalls
        self._new_flowing: asyncio.Event | None = None

    # -- life cycle -----------------------------------------------------------------------

    def __enter__(self) -> Self:
        self._thread.start()
        self._call(self._setup)
        self._call(self._listen)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._call(self._close_everything)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    # -- faults ---------------------------------------------------------------------------

    def refuse(self) -> None:
        """Stop listening (connects are refused) and reset every open connection."""
        self._call(self._refuse)

    def stall(self, *, established: bool = True) -> None:
        """Hold the bytes of new connections and, with ``established``, of open ones."""
        self._call(self._stall, established)

    def reset_established(self) -> None:
        """Reset every open connection (new ones are not affected)."""
        self._call(self._reset_all)

    def heal(self) -> None:
        """Forward everything again (bytes held meanwhile go through), listen again."""
        self._call(self._heal)

    # -- in the proxy's loop --------------------------------------------------------------

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        async def run() -> Any:
            result = fn(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def _setup(self) -> None:
        self._stall_all = asyncio.Event()
        self._stall_all.set()
        self._new_flowing = asyncio.Event()
        self._new_flowing.set()

    async def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        self._server = await asyncio.start_server(self._accept, sock=sock)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._new_flowing is not None
        link = _Link(writer)
        self._links.add(link)
        try:
            await self._new_flowing.wait()  # a stalled connect: accepted, never answered
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
            link.upstream = up_writer
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            link.close(reset=False)
            self._links.discard(link)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        assert self._stall_all is not None
        try:
            while data := await reader.read(65536):
                await self._stall_all.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    def _refuse(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        self._reset_all()

    def _reset_all(self) -> None:
        for link in list(self._links):
            link.close(reset=True)
        self._links.clear()

    def _stall(self, established: bool) -> None:
        assert self._new_flowing is not None and self._stall_all is not None
        self._new_flowing.clear()
        if established:
            self._stall_all.clear()

    async def _heal(self) -> None:
        assert self._new_flowing is not None and self._stall_all is not None
        self._new_flowing.set()
        self._stall_all.set()
        if self._server is None:
            await self._listen()

    def _close_everything(self) -> None:
        assert self._new_flowing is not None and self._stall_all is not None
        self._new_flowing.set()  # held handlers run on, into the reset below
        self._stall_all.set()
        self._refuse()


class _Link:
    """One proxied connection: the client's side and, once connected, the upstream's."""

    def __init__(self, client: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream: asyncio.StreamWriter | None = None

    def close(self, *, reset: bool) -> None:
        for writer in (self.client, self.upstream):
            if writer is None or writer.is_closing():
                continue
            if reset:  # RST instead of FIN: the peer sees "connection reset"
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort() if reset else writer.close()
