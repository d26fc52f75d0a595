"""Security: how every request to the Execution API is authenticated and authorized.

The enforcement flow, end to end, for one request:

1. **Bearer validation** (``bearer.authenticate``). Reads ``Authorization: Bearer <jwt>``;
   none or an empty one -> 401 ``Missing auth token``. The token validator
   (``taskgate.tokens``) checks the signature with the key named by ``kid`` and only that
   key's pinned algorithm, then ``aud``/``exp``/``iat``/``sub`` (+ ``iss``) with leeway, then
   the claim schema; failures -> 403 ``Invalid auth token`` (or ``Invalid token scope: x``),
   the failed check named in the ``Taskgate-Reason`` header (``token_expired``,
   ``unknown_key``, ``bad_signature``, ...). A token bound to a key (``cnf.jkt``, DPoP)
   is never accepted as a bearer token -> 401 ``dpop_proof_required``; it must come as
   ``Authorization: DPoP`` with a proof of that key (``dpop``: the proof's checks, the URL
   the client called, the replay record shared by every replica) -> else 401 with the
   failed check (``key_mismatch``, ``proof_replayed``, ...). A bearer token's proof, on
   ``/run``, names the key the issued execution token is bound to. With nonces required
   (``dpop_nonce``), a proof must also carry a recent server nonce (401
   ``use_dpop_nonce`` hands one out), and every answer to a proof carries the current one.
   The typed token is kept on the ASGI scope in a ``RequestAuth`` (``request_auth``), so
   the signature is checked at most once per request whatever else asks for the token
   (and not at all when the token is in the verified-token cache, ``tokens.cache``).
2. **``require_auth``** (``authorization``), attached with ``Security(require_auth, scopes=..)``
   to routers and routes. Checks the token type against the matched route's allowed types
   and each subject binding (``ti:self``: ``sub`` must equal ``{task_instance_id}``, see
   ``bindings``). Then the token gate (``services.token_standing``): a token issued before
   its TI's ``tokens_not_before`` (revoked) -> 403, a spent workload token -> 409, and,
   except on ``ti:lifecycle`` routes where the state machine answers, a token of an ended
   TI -> 403. On a ``ti:gate-in-write`` route (the heartbeat) the route's own write is
   the gate instead (see ``routing``). Passing moves the request to ``AUTHORIZED``.
3. **``TaskRoute``** (``routing``), the route class of every API router. At registration it
   derives the route's allowed token types from its ``token:<type>`` scopes (default
   ``execution`` only) and checks binding path parameters; mistakes fail at import time.

Every refusal, at any layer or in a service's own write (``services.errors.TokenRefused``,
answered by ``taskgate.api.errors``), is a ``tokens.Refusal`` and goes through
``request_auth.refuse``: one audit event (``taskgate.audit``, never the token), the
request moved to ``REFUSED``, the reason counted in the metrics and sent in the
``Taskgate-Reason`` header.

After the handler, **``TokenReissueMiddleware``** (``reissue``) adds ``Refreshed-API-Token``
to responses of ``AUTHORIZED`` requests whose execution token is close to expiry, reusing
the cached token. A route is opened to workload tokens by one line on that route:
``dependencies=[Security(require_auth, scopes=["token:execution", "token:workload"])]``.
``route_policy`` lists every served route's policy (``taskgate routes``).
"""

from taskgate.security.authorization import CurrentToken, ProvenKey, require_auth
from taskgate.security.bearer import authenticate
from taskgate.security.reissue import TokenReissueMiddleware
from taskgate.security.request_auth import refuse
from taskgate.security.routing import TaskRoute

__all__ = [
    "CurrentToken",
    "ProvenKey",
    "TaskRoute",
    "TokenReissueMiddleware",
    "authenticate",
    "refuse",
    "require_auth",
]
