"""An attack table after RFC 8725, over the real app: every case gets 401/403 (400 for
duplicated credentials) with the reason code of the check that caught it in the
``Taskgate-Reason`` header, never 2xx or 5xx, and never a fresh token."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from taskgate.tokens import keys as keylib
from tests.support.api import BEAT_BODY, RUN_BODY, bearer, signed


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj) -> str:
    return b64(json.dumps(obj).encode())


def claims(runtime, ti_id, **over):
    now = time.time() + 0.5  # after the queue's watermark
    base = {"aud": runtime.settings.audience, "sub": str(ti_id), "iat": now, "nbf": now,
            "exp": now + 600, "jti": uuid.uuid4().hex, "scope": "execution"}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def unsigned(runtime, payload, alg):
    header = {"alg": alg, "kid": runtime.keys.signing.kid, "typ": "JWT"}
    return f"{b64json(header)}.{b64json(payload)}."


def hs_with_public_key(runtime, payload):
    """HS256 'signed' with an RSA public key as the secret (key confusion)."""
    rsa_key = keylib.generate_private_key(keylib.KeyType.RSA)
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64json({"alg": "HS256", "kid": runtime.keys.signing.kid, "typ": "JWT"})
    body = b64json(payload)
    mac = hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(mac)}"


def ed_public_as_hmac_secret(runtime, payload):
    public = runtime.keys.signing.verification.key.public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return jwt.encode(payload, public * 2, algorithm="HS512",
                      headers={"kid": runtime.keys.signing.kid})


JKT = b64(hashlib.sha256(b"the thumbprint of somebody's key").digest())

# Bound to another (here: no) TI: a route naming the TI sees the mismatch, the others find
# that the token's TI does not exist.
OTHER_TI = {"ti": "subject_mismatch", "data": "unknown_task_instance"}

# name: (the reason the server gives, the token)
ATTACKS = {
    "alg none": ("algorithm_not_allowed", lambda rt, ti: unsigned(rt, claims(rt, ti), "none")),
    "alg None": ("algorithm_not_allowed", lambda rt, ti: unsigned(rt, claims(rt, ti), "None")),
    "alg NONE": ("algorithm_not_allowed", lambda rt, ti: unsigned(rt, claims(rt, ti), "NONE")),
    "HS256 with RSA public key": ("algorithm_not_allowed", lambda rt, ti: hs_with_public_key(rt, claims(rt, ti))),
    "HS512 with our public key": ("algorithm_not_allowed", lambda rt, ti: ed_public_as_hmac_secret(rt, claims(rt, ti))),
    "embedded jwk": ("forbidden_header", lambda rt, ti: signed(rt, claims(rt, ti), jwk={"kty": "OKP", "crv": "Ed25519", "x": "AA"})),
    "jku": ("forbidden_header", lambda rt, ti: signed(rt, claims(rt, ti), jku="http://127.0.0.1:1/jwks.json")),
    "x5u": ("forbidden_header", lambda rt, ti: signed(rt, claims(rt, ti), x5u="http://127.0.0.1:1/cert.pem")),
    "unknown crit": ("forbidden_header", lambda rt, ti: signed(rt, claims(rt, ti), crit=["urn:x"])),
    "unknown kid": ("unknown_key", lambda rt, ti: signed(rt, claims(rt, ti), kid="attacker")),
    "expired": ("token_expired", lambda rt, ti: signed(rt, claims(rt, ti, exp=time.time() - 60))),
    "future nbf": ("not_yet_valid", lambda rt, ti: signed(rt, claims(rt, ti, nbf=time.time() + 600))),
    "future iat": ("not_yet_valid", lambda rt, ti: signed(rt, claims(rt, ti, iat=time.time() + 600))),
    "wrong aud": ("audience_mismatch", lambda rt, ti: signed(rt, claims(rt, ti, aud="urn:someone-else"))),
    "missing aud": ("missing_claim", lambda rt, ti: signed(rt, claims(rt, ti, aud=None))),
    "missing exp": ("missing_claim", lambda rt, ti: signed(rt, claims(rt, ti, exp=None))),
    "missing sub": ("missing_claim", lambda rt, ti: signed(rt, claims(rt, ti, sub=None))),
    "empty sub": ("invalid_claims", lambda rt, ti: signed(rt, {**claims(rt, ti), "sub": ""})),
    "non-uuid sub": ("invalid_claims", lambda rt, ti: signed(rt, {**claims(rt, ti), "sub": "../../etc"})),
    "numeric sub": ("invalid_claims", lambda rt, ti: signed(rt, {**claims(rt, ti), "sub": 42})),
    "another TI's sub": (OTHER_TI, lambda rt, ti: signed(rt, claims(rt, uuid.uuid4()))),
    "scope spoofing admin": ("invalid_scope", lambda rt, ti: signed(rt, claims(rt, ti, scope="admin"))),
    "scope spoofing list": ("invalid_scope", lambda rt, ti: signed(rt, claims(rt, ti, scope=["execution"]))),
    "workload scope": ("token_type_not_allowed", lambda rt, ti: signed(rt, claims(rt, ti, scope="workload"))),
    "oversized": ("token_too_large", lambda rt, ti: signed(rt, claims(rt, ti, pad="A" * 9000))),
    "malformed base64": ("malformed_token", lambda rt, ti: "eyJhbGciOi!!!.eyJzdWIi!!!.c2ln"),
    "malformed json": ("malformed_token", lambda rt, ti: f"{b64(b'{not json')}.{b64json(claims(rt, ti))}.c2ln"),
    "two segments": ("malformed_token", lambda rt, ti: "abc.def"),
    "tampered payload": ("bad_signature", lambda rt, ti: _tamper(signed(rt, claims(rt, ti)))),
    # A token bound to a key (RFC 9449) is worth nothing without a proof of that key.
    "bound token as Bearer": ("dpop_proof_required", lambda rt, ti: signed(rt, claims(rt, ti, cnf={"jkt": JKT}))),
    "binding taskgate cannot check": ("invalid_claims", lambda rt, ti: signed(rt, claims(rt, ti, cnf={"x5t#S256": JKT}))),
}


def _tamper(token):
    header, _payload, sig = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(_payload + "=="))
    body["exp"] += 3600
    return f"{header}.{b64json(body)}.{sig}"


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_attack_is_refused(client, factory, runtime, name):
    ti, _token = await factory.running_ti(client)
    reason, make = ATTACKS[name]
    token = make(runtime, ti.id)
    for kind, method, path, body in (
        ("ti", "PUT", f"/execution/task-instances/{ti.id}/heartbeat", BEAT_BODY),
        ("ti", "PATCH", f"/execution/task-instances/{ti.id}/run", RUN_BODY),
        ("data", "GET", "/execution/variables/anything", None),
        ("data", "POST", f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/k", {"v": 1}),
    ):
        if name == "workload scope" and path.endswith("/run"):
            continue  # workload tokens are meant for /run
        response = await client.request(method, path, json=body, headers=bearer(token))
        assert response.status_code in (401, 403), (name, path, response.status_code, response.text)
        expected = reason[kind] if isinstance(reason, dict) else reason
        assert response.headers["Taskgate-Reason"] == expected, (name, path)
        assert "Refreshed-API-Token" not in response.headers
        assert token not in response.text
        if expected == "dpop_proof_required":
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith('DPoP error="invalid_token"')


async def test_duplicated_credentials_are_a_bad_request(client, factory):
    ti, token = await factory.running_ti(client)
    response = await client.put(
        f"/execution/task-instances/{ti.id}/heartbeat", json=BEAT_BODY,
        headers=[("Authorization", f"Bearer {token}"), ("authorization", "Bearer x")],
    )
    assert response.status_code == 400
    assert response.headers["Taskgate-Reason"] == "multiple_authorization_headers"
