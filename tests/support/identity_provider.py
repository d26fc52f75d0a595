"""An OIDC identity provider for tests: real RSA and EC signing keys, its JWKS served by a
real HTTP server on 127.0.0.1, and the access tokens it signs (client-credentials style).

``mode`` makes the JWKS endpoint misbehave as a real one can: ``hang`` (accepts, never
answers), ``error`` (HTTP 500), ``garbage`` (200, not JSON); ``go_down()`` closes its port
(connection refused).
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://idp.example.test/realms/taskgate"
AUDIENCE = "urn:taskgate:control"
JWKS_PATH = "/protocol/openid-connect/certs"
KeyKind = Literal["rsa", "ec"]
Mode = Literal["ok", "hang", "error", "garbage"]


def new_private_key(kind: KeyKind = "rsa") -> Any:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private_key: Any, kid: str) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        alg = "RS256"
    else:
        jwk = ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
        alg = "ES256"
    return {**jwk, "kid": kid, "alg": alg, "use": "sig"}


class IdentityProvider:
    def __init__(self, issuer: str = ISSUER, audience: str = AUDIENCE) -> None:
        self.issuer, self.audience = issuer, audience
        self.keys: dict[str, Any] = {}  # kid -> private key, published in the JWKS
        self.kid = ""  # the key tokens are signed with unless told otherwise
        self.mode: Mode = "ok"
        self.delay = 0.0  # seconds before each JWKS answer
        self.jwks_requests = 0
        self.url = ""  # http://127.0.0.1:<port>, set while served
        self._count = threading.Lock()
        self._release = threading.Event()  # ends ``hang``
        self._stop: Callable[[], None] = lambda: None

    @property
    def jwks_url(self) -> str:
        return self.url + JWKS_PATH

    def add_key(self, kind: KeyKind = "rsa", *, private_key: Any = None) -> str:
        """Publish a new signing key; it signs from now on. Returns its kid."""
        kid = f"{kind}-{uuid.uuid4().hex[:8]}"
        self.keys[kid] = private_key or new_private_key(kind)
        self.kid = kid
        return kid

    def go_down(self) -> None:
        """Stop serving: the JWKS URL refuses connections from now on."""
        self._stop()

    def withdraw(self, kid: str) -> None:
        del self.keys[kid]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [public_jwk(key, kid) for kid, key in self.keys.items()]}

    def claims(self, lifetime: int = 300, **claims: Any) -> dict[str, Any]:
        now = int(time.time())
        base = {"iss": self.issuer, "aud": self.audience, "sub": "orchestrator",
                "iat": now, "nbf": now, "exp": now + lifetime, "taskgate_role": "operator",
                "taskgate_teams": []}
        return {**base, **claims}

    def token(
        self, claims: dict[str, Any] | None = None, *, kid: str | None = None,
        key: Any = None, without: tuple[str, ...] = (), **overrides: Any,
    ) -> str:
        """An access token with ``claims`` (default: ``self.claims(**overrides)``, less
        ``without``), signed by the key of ``kid`` (or by ``key``, under that kid)."""
        payload = dict(claims or self.claims(**overrides))
        for name in without:
            payload.pop(name, None)
        kid = kid or self.kid
        signer = key if key is not None else self.keys[kid]
        alg = "RS256" if isinstance(signer, rsa.RSAPrivateKey) else "ES256"
        return jwt.encode(payload, signer, algorithm=alg, headers={"kid": kid})

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._count:
            self.jwks_requests += 1
        if self.mode == "hang":
            self._release.wait(30)
            return
        time.sleep(self.delay)
        if handler.path != JWKS_PATH:
            status, body = 404, b"{}"
        elif self.mode == "error":
            status, body = 500, b"internal error"
        elif self.mode == "garbage":
            status, body = 200, b"<html>sign in</html>"
        else:
            status, body = 200, json.dumps(self.jwks()).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)


@contextmanager
def serving(idp: IdentityProvider) -> Iterator[IdentityProvider]:
    """Serve ``idp``'s JWKS on 127.0.0.1 for the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server hook
            idp._answer(self)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    idp.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stopped = False

    def stop() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            server.shutdown()
            server.server_close()
            thread.join(timeout=10)

    idp._stop = stop
    try:
        yield idp
    finally:
        idp._release.set()
        stop()
