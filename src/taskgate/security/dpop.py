"""Layer 1b, proof of possession (DPoP, RFC 9449): the ``DPoP`` header of a request.

A token bound to a key (``cnf.jkt``) comes as ``Authorization: DPoP <token>`` with a
``DPoP`` header: a proof, signed by that key, for this request's method and URL, dated
within ``TASKGATE_DPOP_PROOF_WINDOW``, carrying the token's hash (``ath``) and never used
before. The proof's own checks are ``tokens.dpop.verify_proof``; this step adds what
needs the request and the server: the URL the client called (``TASKGATE_PUBLIC_URL``
behind a proxy that changes it), the clock and window, and the record of every proof
used, kept in the database every replica shares (``services.dpop_replay``), so a proof
is accepted once on all of them. A proof that cannot be recorded is refused with the
database fault's 503, never accepted unrecorded.

A bearer token may carry a proof too: on ``/run`` that is how a worker asks for an
execution token bound to its key (the proof's key is kept on the request, see
``bearer``).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from starlette.requests import Request

from taskgate.runtime import Runtime
from taskgate.security.request_auth import refuse
from taskgate.services import dpop_replay
from taskgate.tokens import Refusal, TaskToken
from taskgate.tokens.dpop import DPoPRefusal, verify_proof
from taskgate.wire.http import DPOP_NONCE_HEADER

# Kept past the last moment a proof could be accepted: its iat is read to the second.
_RECORD_MARGIN_SECONDS = 1.0


def request_url(request: Request, public_url: str | None) -> str:
    """The URL the client called, without query: behind ``public_url`` if set. The path
    as the client sent it (percent-encoded), not as decoded for routing."""
    raw = request.scope.get("raw_path")
    path = raw.decode("latin-1") if raw else request.url.path
    if public_url:
        return public_url.rstrip("/") + path
    return f"{request.url.scheme}://{request.url.netloc}{path}"


async def proven_key(
    request: Request, proof: str, raw_token: str, token: TaskToken
) -> str:
    """Check the request's DPoP ``proof`` for ``token`` (sent as ``raw_token``) and record
    it as used; the thumbprint of the key that signed it. Refuses (raises) otherwise."""
    runtime = Runtime.of(request)
    settings = runtime.settings
    now = time.time()
    try:
        accepted = verify_proof(
            proof,
            method=request.method,
            url=request_url(request, settings.public_url),
            now=now,
            window=settings.dpop_proof_window,
            leeway=settings.leeway,
            access_token=raw_token,
            expected_jkt=token.jkt,
            nonce=None if runtime.nonces is None else runtime.nonces.accepts,
        )
    except DPoPRefusal as exc:
        who = _who(token)
        refusal = Refusal(exc.reason.value)
        if refusal is Refusal.USE_DPOP_NONCE and runtime.nonces is not None:
            raise refuse(request, refusal, exc.message, log=who,
                         headers={DPOP_NONCE_HEADER: runtime.nonces.current()}) from None
        raise refuse(request, refusal, exc.message, log=who) from None
    last_acceptable = accepted.iat + settings.dpop_proof_window + settings.leeway
    first = await dpop_replay.first_use(
        runtime.writes,
        jkt=accepted.jkt,
        jti=accepted.jti,
        expires_at=datetime.fromtimestamp(last_acceptable + _RECORD_MARGIN_SECONDS, UTC),
    )
    if not first:
        raise refuse(request, Refusal.PROOF_REPLAYED, log=_who(token))
    return accepted.jkt


def _who(token: TaskToken) -> dict[str, str]:
    return {"sub": str(token.sub), "jti": token.jti}
