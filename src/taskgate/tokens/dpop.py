"""DPoP proofs (RFC 9449): checking that a request comes from the holder of a key.

A DPoP proof is a small JWT that a client signs, per request, with a private key of its
own and sends in the ``DPoP`` header. The proof carries the matching public key in its
``jwk`` header. A valid proof shows that whoever sent this request, with this method, to
this URL, at about this time, holds that private key. With ``ath`` (the hash of the
access token) it also ties the proof to one access token; and when that token's
``cnf.jkt`` names the key's thumbprint (RFC 7638), a stolen token is useless without the
key.

``verify_proof`` checks one proof, in this order, and refuses with the first failing
check's reason: size; one compact JWS; ``typ`` is ``dpop+jwt``; ``alg`` is ``EdDSA`` or
``ES256`` (never ``none``, a MAC or RSA); ``jwk`` is a public key of that algorithm's key
type and curve; the signature, with that key; the claims (``jti``, ``htm``, ``htu``,
``iat``, and ``ath`` when an access token is given); ``htm`` is the request's method;
``htu`` is the request's URL (compared as ``normalize_htu`` says); ``iat`` is within the
window; ``ath`` is the access token's hash; the key's thumbprint is the expected one; the
nonce, when one is required.

Left to the caller:

* replay: a ``jti`` must be accepted once only (within the window). That needs state
  shared by every replica, so the server records ``jti`` in its database after this
  check; this module never remembers a proof;
* nonces: issuing them (``DPoP-Nonce``), deciding when one is required and which ones
  are still good (pass a callable as ``nonce``);
* binding: putting the thumbprint into the access token's ``cnf.jkt`` when the token is
  issued, and passing it back here as ``expected_jkt``.

Nothing here knows about HTTP, routes or the database. A refusal's ``reason`` is a stable
code and its message is fixed per reason: neither ever contains the proof or the token.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
import re
import string
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

import jwt

from taskgate.tokens.claims import MAX_JTI_LENGTH
from taskgate.tokens.keys import THUMBPRINT_MEMBERS, b64url, thumbprint

DPOP_PROOF_TYPE = "dpop+jwt"
MAX_PROOF_BYTES = 8192
# Proof headers (one per client key) whose key is kept ready: more than the task attempts
# one server runs at once, so a busy server does not evict a key it will need next.
PROOF_KEYS_CACHED = 4096

# The only proof algorithms accepted, each with the only key type and curve it may use.
DPOP_ALGORITHMS: dict[str, tuple[str, str]] = {
    "EdDSA": ("OKP", "Ed25519"),
    "ES256": ("EC", "P-256"),
}

# RFC 7638 §3.2: the required public members, per key type (only the types we accept).
# Private key members of any JWK type (RFC 7518 §6): a proof's jwk must carry none.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Header members that would change how the JWS is read (RFC 7515 §4.1.11, RFC 7797).
_REFUSED_HEADERS = frozenset({"crit", "b64"})

_ALGORITHMS = {name: jwt.get_algorithm_by_name(name) for name in DPOP_ALGORITHMS}
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PERCENT_ENCODED = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset(string.ascii_letters + string.digits + "-._~")  # RFC 3986 §2.3


class DPoPReason(StrEnum):
    """Why a proof is refused; the value is the stable code."""

    MALFORMED_PROOF = "malformed_proof"
    PROOF_TOO_LARGE = "proof_too_large"
    PROOF_TYPE_INVALID = "proof_type_invalid"
    PROOF_ALGORITHM_NOT_ALLOWED = "proof_algorithm_not_allowed"
    PROOF_KEY_INVALID = "proof_key_invalid"
    BAD_PROOF_SIGNATURE = "bad_proof_signature"
    PROOF_MISSING_CLAIM = "proof_missing_claim"
    PROOF_METHOD_MISMATCH = "proof_method_mismatch"
    PROOF_URL_MISMATCH = "proof_url_mismatch"
    PROOF_EXPIRED = "proof_expired"
    PROOF_NOT_YET_VALID = "proof_not_yet_valid"
    ACCESS_TOKEN_HASH_MISMATCH = "access_token_hash_mismatch"
    KEY_MISMATCH = "key_mismatch"
    USE_DPOP_NONCE = "use_dpop_nonce"


_MESSAGES = {
    DPoPReason.MALFORMED_PROOF: "DPoP proof is not a well-formed JWT",
    DPoPReason.PROOF_TOO_LARGE: "DPoP proof is too large",
    DPoPReason.PROOF_TYPE_INVALID: "DPoP proof typ must be dpop+jwt",
    DPoPReason.PROOF_ALGORITHM_NOT_ALLOWED: "DPoP proof algorithm not allowed (EdDSA or ES256)",
    DPoPReason.PROOF_KEY_INVALID: "DPoP proof jwk is missing or not an acceptable public key",
    DPoPReason.BAD_PROOF_SIGNATURE: "DPoP proof signature is invalid",
    DPoPReason.PROOF_MISSING_CLAIM: "DPoP proof lacks a required claim",
    DPoPReason.PROOF_METHOD_MISMATCH: "DPoP proof htm does not match the request method",
    DPoPReason.PROOF_URL_MISMATCH: "DPoP proof htu does not match the request URL",
    DPoPReason.PROOF_EXPIRED: "DPoP proof is too old",
    DPoPReason.PROOF_NOT_YET_VALID: "DPoP proof is issued in the future",
    DPoPReason.ACCESS_TOKEN_HASH_MISMATCH: "DPoP proof ath does not match the access token",
    DPoPReason.KEY_MISMATCH: "DPoP proof key is not the key the access token is bound to",
    DPoPReason.USE_DPOP_NONCE: "DPoP proof must carry the server's current nonce",
}


class DPoPRefusal(Exception):
    """A refused proof. ``reason`` is a stable code (a ``DPoPReason``, which is a ``str``);
    the message is fixed per reason and safe to show to the client."""

    def __init__(self, reason: DPoPReason) -> None:
        self.reason = DPoPReason(reason)
        self.message = _MESSAGES[self.reason]
        super().__init__(self.message)


@dataclass(frozen=True, slots=True)
class DPoPProof:
    """An accepted proof: its key's thumbprint and the claims the caller still needs
    (``jti`` and ``iat`` for the replay check, ``nonce`` if any)."""

    jkt: str
    jti: str
    iat: int
    htm: str
    htu: str
    nonce: str | None


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url, no padding) of a public OKP or EC key.

    Only the required members enter it, so other members and their order do not change
    it. Raises ``DPoPRefusal(proof_key_invalid)`` for another key type, a missing or
    non-string member, or a private member.
    """
    if not isinstance(jwk, dict) or _PRIVATE_MEMBERS.intersection(jwk):
        raise DPoPRefusal(DPoPReason.PROOF_KEY_INVALID)
    kty = jwk.get("kty")
    members = THUMBPRINT_MEMBERS.get(kty) if kty in ("OKP", "EC") else None
    if members is None or not all(isinstance(jwk.get(m), str) for m in members):
        raise DPoPRefusal(DPoPReason.PROOF_KEY_INVALID)
    return thumbprint(jwk)


def access_token_hash(token: str) -> str:
    """The ``ath`` of an access token (RFC 9449 §4.2): base64url(SHA-256(ASCII token))."""
    return b64url(hashlib.sha256(token.encode("ascii")).digest())


def normalize_htu(url: str) -> str:
    """The form in which ``htu`` and the request URL are compared (RFC 9449 §4.3, with
    RFC 3986 §6.2.2 and §6.2.3 normalization): scheme and host lower-case, the scheme's
    default port dropped, query and fragment dropped, the path's percent-encodings in
    upper case and those of unreserved characters decoded ("/" if empty).

    Raises ``ValueError`` for anything but an absolute http(s) URL with a host and no
    user information.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise ValueError("not an http(s) URL")
    if "@" in parts.netloc:
        raise ValueError("user information is not allowed")
    host = parts.hostname  # lower-cased, IPv6 brackets removed
    if not host:
        raise ValueError("URL without a host")
    port = parts.port  # raises ValueError for a port that is not a number in range
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _PERCENT_ENCODED.sub(_normal_percent, parts.path) or "/"
    return f"{scheme}://{netloc}{path}"


def _normal_percent(match: re.Match[str]) -> str:
    character = chr(int(match.group(1), 16))
    return character if character in _UNRESERVED else f"%{match.group(1).upper()}"


def _same(a: str, b: str) -> bool:
    encoded_a, encoded_b = (s.encode("utf-8", "surrogatepass") for s in (a, b))
    return hmac.compare_digest(encoded_a, encoded_b)


def _checked_proof(proof: Any) -> str:
    if not isinstance(proof, str):
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)
    too_large = len(proof) > MAX_PROOF_BYTES
    if too_large or len(proof.encode("utf-8", "surrogatepass")) > MAX_PROOF_BYTES:
        raise DPoPRefusal(DPoPReason.PROOF_TOO_LARGE)
    if not _COMPACT_JWS.fullmatch(proof):
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)
    return proof


def _header(segment: str) -> dict[str, Any]:
    # The regular expression has checked the alphabet: each segment is decoded once here,
    # not again, character by character, by a general JWS parser (most of a proof's cost).
    header = _json_segment(segment)
    if _REFUSED_HEADERS.intersection(header):
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)
    return header


@functools.lru_cache(maxsize=PROOF_KEYS_CACHED)
def _proof_key(segment: str) -> tuple[str, jwt.PyJWK, str]:
    """The algorithm, public key and thumbprint of a proof whose header segment is
    ``segment``, once every check of the header has passed.

    A client signs every proof with the same key and the same header, so the header
    segment repeats, byte for byte, on every request of a task attempt; reading it, and
    building and checking its key, is done once per segment (a refusal is not kept: it
    raises again each time). Only what the exact bytes of the segment determine is kept;
    the signature and the claims of each proof are checked every time."""
    header = _header(segment)
    if header.get("typ") != DPOP_PROOF_TYPE:
        raise DPoPRefusal(DPoPReason.PROOF_TYPE_INVALID)
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in DPOP_ALGORITHMS:
        raise DPoPRefusal(DPoPReason.PROOF_ALGORITHM_NOT_ALLOWED)
    key, jkt = _public_key(header, alg)
    return alg, key, jkt


def _segment(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF) from None


def _json_segment(segment: str) -> dict[str, Any]:
    try:
        value = json.loads(_segment(segment))
    except (ValueError, UnicodeDecodeError):
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF) from None
    if not isinstance(value, dict):
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)
    return value


def _public_key(header: dict[str, Any], alg: str) -> tuple[jwt.PyJWK, str]:
    """The proof's key, checked to be public and of ``alg``'s type and curve, and its
    thumbprint."""
    jwk = header.get("jwk")
    kty, crv = DPOP_ALGORITHMS[alg]
    if (
        not isinstance(jwk, dict)
        or _PRIVATE_MEMBERS.intersection(jwk)
        or jwk.get("kty") != kty
        or jwk.get("crv") != crv
        or jwk.get("alg", alg) != alg
    ):
        raise DPoPRefusal(DPoPReason.PROOF_KEY_INVALID)
    jkt = jwk_thumbprint(jwk)
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)  # checks the coordinates: length, on the curve
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise DPoPRefusal(DPoPReason.PROOF_KEY_INVALID) from None
    if hasattr(key.key, "private_bytes"):
        raise DPoPRefusal(DPoPReason.PROOF_KEY_INVALID)
    return key, jkt


def _payload(proof: str, key: jwt.PyJWK, alg: str) -> dict[str, Any]:
    signing_input, _, signature = proof.rpartition(".")
    # PyJWT's algorithm object (its public API for one algorithm) checks the signature:
    # for ES256 it also turns the JWS form (r || s) into what the library verifies.
    if not _ALGORITHMS[alg].verify(signing_input.encode("ascii"), key.key, _segment(signature)):
        raise DPoPRefusal(DPoPReason.BAD_PROOF_SIGNATURE)
    return _json_segment(signing_input[signing_input.index(".") + 1 :])


def _claims(claims: dict[str, Any], *, need_ath: bool) -> None:
    required = ("jti", "htm", "htu", "iat") + (("ath",) if need_ath else ())
    if any(claims.get(name) is None for name in required):
        raise DPoPRefusal(DPoPReason.PROOF_MISSING_CLAIM)
    jti, iat = claims["jti"], claims["iat"]
    if not isinstance(jti, str) or not 0 < len(jti) <= MAX_JTI_LENGTH:
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)
    if isinstance(iat, bool) or not isinstance(iat, int | float):
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)
    if isinstance(iat, float) and not math.isfinite(iat):  # JSON's NaN, Infinity, 1e400
        raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)
    for name in ("htm", "htu", "ath", "nonce"):
        if claims.get(name) is not None and not isinstance(claims[name], str):
            raise DPoPRefusal(DPoPReason.MALFORMED_PROOF)


def _htu_matches(htu: str, request_url: str) -> bool:
    try:
        return normalize_htu(htu) == request_url
    except ValueError:
        return False


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    window: float = 60.0,
    leeway: float = 5.0,
    access_token: str | None = None,
    expected_jkt: str | None = None,
    nonce: str | Callable[[str], bool] | None = None,
) -> DPoPProof:
    """Check one DPoP proof for a request (``method``, ``url``) received at ``now``.

    ``window``: how old (seconds) a proof's ``iat`` may be; ``leeway``: how far ahead of
    ``now`` it may be. ``access_token``: the token sent with the proof; ``ath`` is then
    required and must be its hash. ``expected_jkt``: the thumbprint the token is bound to
    (its ``cnf.jkt``). ``nonce``: ``None`` when no nonce is required; a string when the
    proof must carry exactly that one; a callable when it must carry one that the
    callable accepts.

    Returns the accepted proof; raises ``DPoPRefusal`` with the first failing check's
    reason (see the module docstring for the order). The ``jti`` is NOT checked for
    replay: the caller must record it (for ``window + leeway`` seconds) and refuse a
    second use. ``ValueError`` if ``url`` itself is not an http(s) URL.
    """
    request_url = normalize_htu(url)
    proof = _checked_proof(proof)
    alg, key, jkt = _proof_key(proof[: proof.index(".")])
    claims = _payload(proof, key, alg)
    _claims(claims, need_ath=access_token is not None)
    if claims["htm"] != method:
        raise DPoPRefusal(DPoPReason.PROOF_METHOD_MISMATCH)
    if not _htu_matches(claims["htu"], request_url):
        raise DPoPRefusal(DPoPReason.PROOF_URL_MISMATCH)
    iat = claims["iat"]
    if iat < now - window:
        raise DPoPRefusal(DPoPReason.PROOF_EXPIRED)
    if iat > now + leeway:
        raise DPoPRefusal(DPoPReason.PROOF_NOT_YET_VALID)
    if access_token is not None:
        try:
            expected_ath = access_token_hash(access_token)
        except UnicodeEncodeError:  # not a token that could have been hashed as ASCII
            raise DPoPRefusal(DPoPReason.ACCESS_TOKEN_HASH_MISMATCH) from None
        if not _same(claims["ath"], expected_ath):
            raise DPoPRefusal(DPoPReason.ACCESS_TOKEN_HASH_MISMATCH)
    if expected_jkt is not None and not _same(jkt, expected_jkt):
        raise DPoPRefusal(DPoPReason.KEY_MISMATCH)
    proof_nonce = claims.get("nonce")
    if nonce is not None:
        if proof_nonce is None:
            raise DPoPRefusal(DPoPReason.USE_DPOP_NONCE)
        good = nonce(proof_nonce) if callable(nonce) else _same(proof_nonce, nonce)
        if not good:
            raise DPoPRefusal(DPoPReason.USE_DPOP_NONCE)
    return DPoPProof(
        jkt=jkt, jti=claims["jti"], iat=int(iat), htm=claims["htm"], htu=claims["htu"],
        nonce=proof_nonce,
    )
