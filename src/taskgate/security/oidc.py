"""OIDC access tokens on the control API: who the identity provider says the caller is.

An orchestrator gets an access token (a JWT) from the identity provider (IdP) with the
client-credentials flow and sends it as its bearer credential. ``OidcVerifier`` checks it
against the IdP's signing keys (``JwksCache``) and reads a name, a role and teams from its
claims (``OidcIdentity``); ``security.operator_auth`` makes of them the same
``OperatorPrincipal`` an operator key gives. Every refusal is an ``OidcRefusal``: 401 for
the token, 403 for its claims, 503 when the IdP's keys cannot be had.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import rsa

from taskgate.services.operators import Role
from taskgate.settings import OIDC_ALGORITHMS, Settings

log = structlog.get_logger("taskgate.control.oidc")

JWKS_CACHE_SECONDS = 300.0
# An unknown kid may be a key the IdP just added, so it earns an early fetch; at most one
# per this interval, so tokens with made-up kids cannot make us hammer the IdP.
JWKS_REFETCH_SECONDS = 30.0
# After a failed fetch, requests are answered 503 at once for this long instead of each
# waiting for the IdP again; it is also the Retry-After of that answer.
JWKS_FAILURE_BACKOFF_SECONDS = 5.0
JWKS_TIMEOUT_SECONDS = 2.0
MAX_JWKS_BYTES = 512 * 1024
MAX_TOKEN_BYTES = 16 * 1024
MAX_NAME_LENGTH = 200
MIN_RSA_BITS = 2048
# Headers that would let a token bring or point at its own key; keys come from the
# configured JWKS only (RFC 8725 §3.10), as for task tokens.
_FORBIDDEN_HEADERS = frozenset({"jku", "jwk", "x5u", "x5c"})
_REQUIRED_CLAIMS = ["exp", "iss", "aud"]
_TEAM_SEPARATORS = re.compile(r"[\s,]+")
_ROLES = frozenset(Role)


class OidcRefusal(Exception):
    """A token refused: ``status`` 401 (the token), 403 (its claims) or 503 (no keys)."""

    def __init__(
        self, status: int, reason: str, message: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.message = status, reason, message
        self.retry_after = retry_after  # seconds, for a 503


def _refused(reason: str, message: str) -> OidcRefusal:
    return OidcRefusal(401, reason, message)


class _FetchFailed(Exception):
    pass


@dataclass(frozen=True)
class OidcIdentity:
    name: str  # oidc:<name claim>
    role: Role
    teams: frozenset[str]  # empty: every team
    expires_at: float | None = None  # the token's exp (a session made from it ends then)


class JwksCache:
    """The IdP's signing keys by ``kid``, fetched with httpx and kept ``ttl`` seconds.

    One fetch at a time, shared by the requests that need it, and shielded from them: a
    request waits for it at most ``wait`` seconds (it must still answer within the
    request deadline, ``TASKGATE_DB_REQUEST_DEADLINE``), and a slow IdP's answer, coming
    later, serves the next requests. A failed fetch keeps nothing stale: a key the IdP
    withdrew must stop working, and we cannot tell a withdrawal from an outage.
    """

    def __init__(
        self,
        url: str,
        *,
        ttl: float = JWKS_CACHE_SECONDS,
        refetch_interval: float = JWKS_REFETCH_SECONDS,
        failure_backoff: float = JWKS_FAILURE_BACKOFF_SECONDS,
        timeout: float = JWKS_TIMEOUT_SECONDS,
        wait: float = JWKS_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._ttl, self._refetch_interval = ttl, refetch_interval
        self._failure_backoff, self._timeout, self._wait = failure_backoff, timeout, wait
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None
        self._early_at = -math.inf
        self._failure: tuple[float, str] | None = None
        self._fetching: asyncio.Task[None] | None = None
        self.fetches = 0  # attempts so far

    async def key(self, kid: str) -> jwt.PyJWK:
        now = self._clock()
        if self._fetched_at is None or now - self._fetched_at >= self._ttl:
            failure = self._failure
            if self._fetching is None and failure and now - failure[0] < self._failure_backoff:
                raise self._unavailable(failure[1])
            await self._refresh()
        elif kid not in self._keys and (
            self._fetching is not None or now - self._early_at >= self._refetch_interval
        ):
            if self._fetching is None:
                self._early_at = now
            await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise _refused(
                "oidc_unknown_key",
                f"the identity provider's JWKS has no key with kid {_short(kid)}",
            )
        return key

    async def _refresh(self) -> None:
        fetching = self._fetching
        if fetching is None:
            fetching = self._fetching = asyncio.create_task(self._fetch_and_keep())
        try:
            await asyncio.wait_for(asyncio.shield(fetching), self._wait)
        except TimeoutError:
            why = f"no answer yet after {self._wait:g} s (still trying)"
            raise self._unavailable(why, retry_after=1) from None
        if self._failure is not None:
            raise self._unavailable(self._failure[1])

    async def _fetch_and_keep(self) -> None:
        self.fetches += 1
        try:
            keys = await self._fetch()
        except _FetchFailed as exc:
            self._failure = (self._clock(), str(exc))
            log.warning("OIDC JWKS fetch failed", url=self.url, error=str(exc))
        else:
            self._keys, self._fetched_at, self._failure = keys, self._clock(), None
        finally:
            self._fetching = None

    def _unavailable(self, why: str, retry_after: float | None = None) -> OidcRefusal:
        return OidcRefusal(
            503, "oidc_unavailable",
            f"the identity provider's JWKS ({self.url}) could not be fetched: {why}",
            retry_after=retry_after or self._failure_backoff,
        )

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        body = bytearray()
        try:
            # httpx's timeout bounds each phase; this bounds them all together.
            async with (
                asyncio.timeout(self._timeout),
                httpx.AsyncClient(timeout=self._timeout) as client,
                client.stream("GET", self.url, headers={"Accept": "application/json"}) as answer,
            ):
                if answer.status_code != 200:
                    raise _FetchFailed(f"answered HTTP {answer.status_code}")
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_JWKS_BYTES:
                        raise _FetchFailed(f"larger than {MAX_JWKS_BYTES} bytes")
        except (TimeoutError, httpx.TimeoutException):
            raise _FetchFailed(f"no answer within {self._timeout:g} s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise _FetchFailed(f"{type(exc).__name__} {exc}".strip()) from None
        return parse_jwks(bytes(body))


def parse_jwks(body: bytes) -> dict[str, jwt.PyJWK]:
    """The usable public signing keys of a JWKS document, by ``kid``; members we cannot
    use (no kid, symmetric, private, for encryption, an algorithm we never accept, RSA
    under 2048 bits, malformed) are left out."""
    try:
        document = json.loads(body)
    except ValueError:
        raise _FetchFailed("the answer is not JSON") from None
    members = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(members, list):
        raise _FetchFailed('the answer has no "keys" list')
    keys: dict[str, jwt.PyJWK] = {}
    for jwk in members:
        if not (
            isinstance(jwk, dict)
            and isinstance(jwk.get("kid"), str)
            and jwk.get("kty") in ("RSA", "EC", "OKP")
            and "d" not in jwk
            and jwk.get("use", "sig") == "sig"
            and jwk.get("alg") in (None, *OIDC_ALGORITHMS)
        ):
            continue
        try:
            key = jwt.PyJWK(jwk)
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            continue
        if isinstance(key.key, rsa.RSAPublicKey) and key.key.key_size < MIN_RSA_BITS:
            continue
        keys[jwk["kid"]] = key
    if not keys:
        raise _FetchFailed("it holds no usable signing key")
    return keys


class OidcVerifier:
    """Checks an IdP's access tokens and reads the operator they name (module docstring)."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        algorithms: Sequence[str],
        role_claim: str,
        teams_claim: str,
        name_claim: str,
        leeway: float,
    ) -> None:
        self.jwks = jwks
        self.issuer, self.audience, self.algorithms = issuer, audience, list(algorithms)
        self.role_claim, self.teams_claim, self.name_claim = role_claim, teams_claim, name_claim
        self.leeway = leeway

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcVerifier:
        assert settings.control_oidc_issuer and settings.control_oidc_audience
        assert settings.control_oidc_jwks_url
        # Half the request deadline: the rest of the request needs its share.
        wait = min(JWKS_TIMEOUT_SECONDS, settings.db_request_deadline / 2)
        return cls(
            JwksCache(settings.control_oidc_jwks_url, wait=wait),
            issuer=settings.control_oidc_issuer,
            audience=settings.control_oidc_audience,
            algorithms=settings.control_oidc_algorithms.split(","),
            role_claim=settings.control_oidc_role_claim,
            teams_claim=settings.control_oidc_teams_claim,
            name_claim=settings.control_oidc_name_claim,
            leeway=settings.leeway,
        )

    async def verify(self, raw: str) -> OidcIdentity:
        return self.identity(await self.claims(raw))

    async def claims(self, raw: str) -> dict[str, Any]:
        """The token's claims, once its signature, issuer, audience and times hold."""
        if len(raw) > MAX_TOKEN_BYTES:
            raise _refused("oidc_invalid", f"the token is longer than {MAX_TOKEN_BYTES} bytes")
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as exc:
            raise _refused("oidc_invalid", f"not a JWT: {exc}") from None
        alg = header.get("alg")
        # Before any key lookup: a task token (EdDSA), `none` or HS* costs no JWKS fetch.
        if alg not in self.algorithms:
            raise _refused(
                "oidc_algorithm_not_allowed",
                f"alg {alg!r} is not accepted (accepted: {', '.join(self.algorithms)})",
            )
        if forbidden := sorted(_FORBIDDEN_HEADERS.intersection(header)):
            raise _refused("oidc_invalid", f"header(s) {', '.join(forbidden)} are not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise _refused("oidc_invalid", "the token's header names no key (kid)")
        key = await self.jwks.key(kid)
        try:
            return jwt.decode(
                raw,
                key,
                algorithms=self.algorithms,
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": _REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError:
            raise _refused("oidc_expired", "the token has expired (exp)") from None
        except jwt.ImmatureSignatureError as exc:
            raise _refused("oidc_not_yet_valid", f"the token is not valid yet: {exc}") from None
        except jwt.InvalidAudienceError:
            raise _refused(
                "oidc_wrong_audience", f"the token's aud does not include {self.audience!r}"
            ) from None
        except jwt.InvalidIssuerError:
            raise _refused("oidc_wrong_issuer", f"the token's iss is not {self.issuer!r}") from None
        except jwt.InvalidSignatureError:
            raise _refused(
                "oidc_bad_signature", f"the signature does not verify with key {_short(kid)}"
            ) from None
        except jwt.InvalidAlgorithmError as exc:
            raise _refused("oidc_algorithm_not_allowed", str(exc)) from None
        except jwt.MissingRequiredClaimError as exc:
            raise _refused("oidc_invalid", f"the token has no {exc.claim!r} claim") from None
        except jwt.PyJWTError as exc:
            raise _refused("oidc_invalid", f"{type(exc).__name__}: {exc}") from None

    def identity(self, claims: Mapping[str, Any]) -> OidcIdentity:
        name = claims.get(self.name_claim)
        if not (isinstance(name, str) and name and len(name) <= MAX_NAME_LENGTH
                and name.isprintable()):
            # Without a name the caller is no one we could tell apart: the token's fault.
            raise _refused(
                "oidc_invalid",
                f"claim {self.name_claim!r} (the operator's name) must be a printable string "
                f"of 1-{MAX_NAME_LENGTH} characters",
            )
        exp = claims.get("exp")
        return OidcIdentity(f"oidc:{name}", self._role(claims), self._teams(claims),
                            float(exp) if isinstance(exp, int | float) else None)

    def _role(self, claims: Mapping[str, Any]) -> Role:
        value = claims.get(self.role_claim)
        named = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        roles = [Role(v) for v in named if isinstance(v, str) and v in _ROLES]
        if not roles:
            shown = "missing" if value is None else _short(value)
            raise OidcRefusal(
                403, "role_required",
                f"OIDC claim {self.role_claim!r} must name a role (reader, operator or admin); "
                f"this token's is {shown}",
            )
        return max(roles, key=list(Role).index)

    def _teams(self, claims: Mapping[str, Any]) -> frozenset[str]:
        value = claims.get(self.teams_claim)
        if value is None:
            # Fail closed: an IdP client that forgot the claim must not act for every team.
            raise OidcRefusal(
                403, "teams_invalid",
                f"OIDC claim {self.teams_claim!r} is missing: it must list the operator's "
                "teams, or be [] (or an empty string) for every team",
            )
        if isinstance(value, str):
            return frozenset(t for t in _TEAM_SEPARATORS.split(value) if t)
        if isinstance(value, list) and all(isinstance(t, str) for t in value):
            return frozenset(t.strip() for t in value if t.strip())
        raise OidcRefusal(
            403, "teams_invalid",
            f"OIDC claim {self.teams_claim!r} must be a list of strings or one string of "
            f"teams separated by spaces or commas; this token's is {_short(value)}",
        )


def _short(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."
