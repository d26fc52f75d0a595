"""One HTTP/1.1 keep-alive connection, kept in plain sight: every request goes on the
same TCP connection, and if the server closes it, the test knows (an HTTP client library
would quietly open a new one)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import Any, Self

import h11


class ConnectionDropped(Exception):
    """The server closed the keep-alive connection."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def reason(self) -> str | None:
        try:
            detail = self.json()["detail"]
        except (ValueError, KeyError, TypeError):
            return None
        return detail.get("reason") if isinstance(detail, dict) else None


class KeepAliveConnection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._h11 = h11.Connection(h11.CLIENT)

    async def __aenter__(self) -> Self:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        assert self._writer is not None
        self._writer.close()

    async def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None,
        json_body: Any = None, timeout: float = 10.0,
    ) -> Answer:
        assert self._reader is not None and self._writer is not None
        body = b"" if json_body is None else json.dumps(json_body).encode()
        fields = [("Host", f"{self.host}:{self.port}"), ("Content-Length", str(len(body)))]
        if json_body is not None:
            fields.append(("Content-Type", "application/json"))
        fields += list((headers or {}).items())
        started = time.monotonic()
        self._writer.write(self._h11.send(h11.Request(method=method, target=path, headers=fields)))
        if body:
            self._writer.write(self._h11.send(h11.Data(data=body)))
        self._writer.write(self._h11.send(h11.EndOfMessage()))
        await self._writer.drain()
        response: h11.Response | None = None
        chunks: list[bytes] = []
        while True:
            event = self._h11.next_event()
            if event is h11.NEED_DATA:
                data = await asyncio.wait_for(self._reader.read(65536), timeout)
                if not data:
                    raise ConnectionDropped(f"{method} {path}: the server closed the connection")
                self._h11.receive_data(data)
            elif isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionDropped(f"{method} {path}: the server closed the connection")
        assert response is not None
        elapsed = time.monotonic() - started
        if self._h11.our_state is h11.MUST_CLOSE or self._h11.their_state is h11.MUST_CLOSE:
            raise ConnectionDropped(f"{method} {path}: the server ends the connection")
        self._h11.start_next_cycle()
        headers_out = {k.decode().lower(): v.decode() for k, v in response.headers}
        return Answer(response.status_code, headers_out, b"".join(chunks), elapsed)
