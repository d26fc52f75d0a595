"""Signing and verification keys: generation, PEM files, JWK/JWKS, RFC 7638 key ids.

Every key pins exactly one JWS algorithm (Ed25519 -> ``EdDSA``, RSA -> ``RS256``, shared
secret -> ``HS512``); the validator only ever accepts that algorithm for that key.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from jwt.algorithms import OKPAlgorithm, RSAAlgorithm


class KeyType(StrEnum):
    ED25519 = "ed25519"
    RSA = "rsa"
    HS512 = "hs512"


ALGORITHM = {KeyType.ED25519: "EdDSA", KeyType.RSA: "RS256", KeyType.HS512: "HS512"}

# RFC 7638 §3.2: the members that enter the thumbprint, per key type.
THUMBPRINT_MEMBERS = {  # RFC 7638 §3.2: the required members of each key type
    "OKP": ("crv", "kty", "x"),
    "EC": ("crv", "kty", "x", "y"),
    "RSA": ("e", "kty", "n"),
    "oct": ("k", "kty"),
}


class KeyFileError(ValueError):
    """A key file or JWKS document that cannot be used."""


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 7515 §2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the ``kid`` of every key we make,
    and the ``jkt`` a DPoP key is known by (``tokens.dpop``)."""
    members = THUMBPRINT_MEMBERS[jwk["kty"]]
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("utf-8")).digest())


@dataclass(frozen=True, slots=True)
class VerificationKey:
    """A key that checks signatures; ``algorithm`` is the only one accepted with it."""

    kid: str
    algorithm: str
    key: Any  # cryptography public key, or bytes for HS512
    public_jwk: dict[str, Any] | None  # None for shared secrets: never published


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    algorithm: str
    key: Any  # cryptography private key, or bytes for HS512
    verification: VerificationKey


def _public_jwk(public_key: Any, algorithm: str) -> dict[str, Any]:
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        jwk = OKPAlgorithm.to_jwk(public_key, as_dict=True)
    elif isinstance(public_key, rsa.RSAPublicKey):
        jwk = RSAAlgorithm.to_jwk(public_key, as_dict=True)
    else:
        raise KeyFileError(f"unsupported public key type {type(public_key).__name__}")
    jwk = {k: v for k, v in jwk.items() if k in THUMBPRINT_MEMBERS[jwk["kty"]]}
    jwk.update(kid=thumbprint(jwk), alg=algorithm, use="sig")
    return jwk


def signing_key_from_private(private_key: Any) -> SigningKey:
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        algorithm = ALGORITHM[KeyType.ED25519]
    elif isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < 2048:
            raise KeyFileError("RSA signing keys must have at least 2048 bits")
        algorithm = ALGORITHM[KeyType.RSA]
    else:
        raise KeyFileError(f"unsupported private key type {type(private_key).__name__}")
    public_key = private_key.public_key()
    jwk = _public_jwk(public_key, algorithm)
    verification = VerificationKey(jwk["kid"], algorithm, public_key, jwk)
    return SigningKey(jwk["kid"], algorithm, private_key, verification)


def signing_key_from_secret(secret: str) -> SigningKey:
    raw = secret.encode("utf-8")
    if len(raw) < 64:
        # HS512 wants a key at least as long as its hash output (RFC 7518 §3.2).
        raise KeyFileError("the HS512 secret must be at least 64 bytes long")
    kid = thumbprint({"kty": "oct", "k": b64url(raw)})
    verification = VerificationKey(kid, "HS512", raw, None)
    return SigningKey(kid, "HS512", raw, verification)


def generate_private_key(key_type: KeyType) -> Any:
    if key_type is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    if key_type is KeyType.RSA:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise KeyFileError(f"{key_type} is not a key pair; use generate_secret()")


def generate_secret() -> str:
    return secrets.token_urlsafe(64)


def private_key_pem(private_key: Any) -> bytes:
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_key(path: Path, private_key: Any) -> None:
    """Write a PEM key readable by its owner only; never overwrites (O_EXCL)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "xb", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
        fh.write(private_key_pem(private_key))


def load_signing_key(path: Path) -> SigningKey:
    try:
        private_key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path} is not an unencrypted PEM private key") from exc
    return signing_key_from_private(private_key)


def verification_key_from_jwk(jwk: dict[str, Any]) -> VerificationKey:
    """A public key from a JWKS entry. Its ``kid`` is taken from the document when present."""
    kty = jwk.get("kty")
    try:
        if kty == "OKP":
            key, algorithm = OKPAlgorithm.from_jwk(jwk), "EdDSA"
        elif kty == "RSA":
            key, algorithm = RSAAlgorithm.from_jwk(jwk), "RS256"
        else:
            raise KeyFileError(f"JWKS key type {kty!r} is not accepted (only OKP and RSA)")
    except (ValueError, TypeError, KeyError) as exc:
        raise KeyFileError(f"invalid JWK: {exc}") from exc
    if hasattr(key, "private_bytes"):
        raise KeyFileError("a JWKS document must not contain private keys")
    if jwk.get("alg") not in (None, algorithm):
        raise KeyFileError(f"JWK alg {jwk.get('alg')!r} does not match its key type ({algorithm})")
    public = _public_jwk(key, algorithm)
    kid = jwk.get("kid") or public["kid"]
    return VerificationKey(kid, algorithm, key, {**public, "kid": kid})


def parse_jwks(document: dict[str, Any]) -> list[VerificationKey]:
    keys = document.get("keys")
    if not isinstance(keys, list):
        raise KeyFileError("a JWKS document needs a 'keys' list")
    return [verification_key_from_jwk(jwk) for jwk in keys]


def load_jwks(location: str, *, timeout: float = 10.0) -> list[VerificationKey]:
    """Read a JWKS document from a file path or an http(s) URL."""
    if location.startswith(("http://", "https://")):
        import httpx  # only a node given a JWKS URL pays for its import

        response = httpx.get(location, timeout=timeout)
        response.raise_for_status()
        document = response.json()
    else:
        document = json.loads(Path(location).read_text())
    return parse_jwks(document)


def jwks_document(keys: list[VerificationKey]) -> dict[str, Any]:
    """The public JWKS of ``keys``; shared secrets are never published."""
    return {"keys": [k.public_jwk for k in keys if k.public_jwk is not None]}
