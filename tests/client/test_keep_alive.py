"""The client gives up an idle keep-alive connection before `taskgate serve` would close it.

A request sent on a connection the server is closing at that instant is lost on the wire;
``/run`` is never sent twice, so the client must not reuse a connection that has been
idle for as long as the server keeps one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from taskgate.client import Client
from taskgate.wire.http import CLIENT_KEEP_ALIVE_SECONDS, SERVER_KEEP_ALIVE_SECONDS


class _KeepsEveryConnection(BaseHTTPRequestHandler):
    """Answers every request and never closes a connection, counting the connections."""

    protocol_version = "HTTP/1.1"
    connections = 0

    def setup(self) -> None:
        super().setup()
        type(self).connections += 1

    def do_GET(self) -> None:  # noqa: N802 - the standard library's name
        body = b'{"status": "healthy"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_url() -> Iterator[str]:
    _KeepsEveryConnection.connections = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _KeepsEveryConnection)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/execution"
    finally:
        server.shutdown()
        server.server_close()


def test_the_client_lets_an_idle_connection_go_before_the_server_does() -> None:
    assert CLIENT_KEEP_ALIVE_SECONDS < SERVER_KEEP_ALIVE_SECONDS


def test_a_connection_idle_past_the_clients_limit_is_not_reused(server_url: str) -> None:
    with Client(server_url) as api:
        api.health()
        api.health()  # at once: the same connection
        assert _KeepsEveryConnection.connections == 1
        time.sleep(CLIENT_KEEP_ALIVE_SECONDS + 0.3)
        api.health()  # idle too long: a new connection, though the server kept the old
        assert _KeepsEveryConnection.connections == 2
