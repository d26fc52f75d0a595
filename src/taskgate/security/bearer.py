"""Layer 1, token validation: ``Authorization: Bearer <jwt>`` (or ``DPoP <jwt>`` with its
proof) -> a typed ``TaskToken``.

It runs once per request: the outcome is stored on the ASGI scope (``RequestAuth``, see
``request_auth``) and every later consumer (``require_auth`` under any scopes, the
re-issue middleware) reuses it. It knows nothing of routes, scopes or token types.

A token bound to a key (``cnf.jkt``) is accepted only as ``DPoP`` with a proof of that
key (``security.dpop``); a bound token sent as ``Bearer`` is refused, and so is an
unbound one sent as ``DPoP``. A bearer token may come with a proof as well: the proof is
checked the same way and its key kept on the request (``RequestAuth.proven_key``), which
is how ``/run`` binds the execution token it issues.
"""

from __future__ import annotations

from fastapi import Request

from taskgate.runtime import Runtime
from taskgate.security import dpop
from taskgate.security.request_auth import AUTH_SCOPE_KEY, RequestAuth, refuse
from taskgate.tokens import InvalidToken, Refusal, TaskToken
from taskgate.wire.http import DPOP_HEADER, asgi_name

_DPOP = asgi_name(DPOP_HEADER)


def _credentials(request: Request) -> tuple[str, str, str | None]:
    """(scheme, token, DPoP proof or None) of the request."""
    authorization: list[bytes] = []
    proofs: list[bytes] = []
    for name, value in request.scope["headers"]:
        if name == b"authorization":
            authorization.append(value)
        elif name == _DPOP:
            proofs.append(value)
    if len(authorization) > 1:
        # RFC 6750 §3.1: more than one method (or copy) of credentials is a bad request.
        raise refuse(request, Refusal.MULTIPLE_AUTHORIZATION_HEADERS)
    if not authorization:
        raise refuse(request, Refusal.MISSING_TOKEN)
    scheme, _, credentials = authorization[0].decode("latin-1").strip().partition(" ")
    scheme, credentials = scheme.lower(), credentials.strip()
    if scheme not in ("bearer", "dpop") or not credentials:
        raise refuse(request, Refusal.MISSING_TOKEN)
    if len(proofs) > 1:
        raise refuse(request, Refusal.MISSING_DPOP_PROOF)  # RFC 9449 §4.3: exactly one
    return scheme, credentials, proofs[0].decode("latin-1") if proofs else None


async def authenticate(request: Request) -> TaskToken:
    """The validated token of this request (validated on first use, then cached)."""
    cached: RequestAuth | None = request.scope.get(AUTH_SCOPE_KEY)
    if cached is not None and cached.token is not None:
        return cached.token
    scheme, raw, proof = _credentials(request)
    try:
        token = Runtime.of(request).validator.validate(raw)
    except InvalidToken as exc:
        raise refuse(request, exc.refusal, exc.detail, log={"detail": exc.reason}) from None
    if token.jkt is not None and scheme != "dpop":
        # Bound to a key: worthless without a proof of that key, never a bearer token.
        raise refuse(request, Refusal.DPOP_PROOF_REQUIRED,
                     log={"sub": str(token.sub), "jti": token.jti, "jkt": token.jkt})
    if token.jkt is None and scheme == "dpop":
        raise refuse(request, Refusal.TOKEN_NOT_BOUND, log={"sub": str(token.sub)})
    if proof is None and token.jkt is not None:
        raise refuse(request, Refusal.MISSING_DPOP_PROOF, log={"sub": str(token.sub)})
    proven_key = None if proof is None else await dpop.proven_key(request, proof, raw, token)
    request.scope[AUTH_SCOPE_KEY] = RequestAuth(token, proven_key=proven_key)
    return token
