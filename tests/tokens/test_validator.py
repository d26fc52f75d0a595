"""The validator against forged, expired and malformed tokens (RFC 8725 cases)."""

import base64
import hashlib
import hmac
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from taskgate.tokens import (
    ExecutionToken,
    InvalidToken,
    InvalidTokenClaims,
    InvalidTokenScope,
    TokenIssuer,
    TokenType,
    TokenValidator,
    WorkloadToken,
)
from taskgate.tokens import keys as keylib

AUD = "urn:taskgate:task"
KEY_TYPE_OF = {alg: key_type for key_type, alg in keylib.ALGORITHM.items()}


def make(key_type=keylib.KeyType.ED25519):
    if key_type is keylib.KeyType.HS512:
        return keylib.signing_key_from_secret(keylib.generate_secret())
    return keylib.signing_key_from_private(keylib.generate_private_key(key_type))


@pytest.fixture(params=list(keylib.KeyType))
def key(request):
    return make(request.param)


def claims(**over):
    now = int(time.time())
    base = {"aud": AUD, "sub": str(uuid.uuid4()), "iat": now, "nbf": now, "exp": now + 600,
            "jti": uuid.uuid4().hex}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def sign(key, payload, **headers):
    headers.setdefault("kid", key.kid)
    return jwt.encode(payload, key.key, algorithm=key.algorithm, headers=headers)


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_issued_tokens_validate_as_their_type(key):
    issuer = TokenIssuer(key, audience=AUD)
    validator = TokenValidator([key.verification], audience=AUD)
    ti = uuid.uuid4()
    execution = validator.validate(issuer.issue(ti))
    workload = validator.validate(issuer.issue(ti, TokenType.WORKLOAD))
    assert isinstance(execution, ExecutionToken) and execution.sub == ti
    assert isinstance(workload, WorkloadToken) and workload.lifetime == 3600


def test_missing_scope_means_execution(key):
    validator = TokenValidator([key.verification], audience=AUD)
    assert isinstance(validator.validate(sign(key, claims())), ExecutionToken)


def test_unknown_scope_is_refused_with_its_value(key):
    validator = TokenValidator([key.verification], audience=AUD)
    with pytest.raises(InvalidTokenScope) as err:
        validator.validate(sign(key, claims(scope="admin")))
    assert err.value.detail == "Invalid token scope: admin"


def test_several_keys_are_selected_by_kid():
    a, b = make(), make(keylib.KeyType.RSA)
    validator = TokenValidator([a.verification, b.verification], audience=AUD)
    assert validator.validate(sign(a, claims())).sub
    assert validator.validate(sign(b, claims())).sub


def _forgeries():
    """(name, the refusal's code, builder(key, other) -> token) for tokens that must all be
    refused, each for its own reason."""
    # Times are read when a token is built, not when the table is: a slow run must not
    # turn "not yet valid" into valid.
    def now() -> int:
        return int(time.time())

    return [
        ("other key", "bad_signature", lambda k, o: sign(o, claims(), kid=k.kid)),
        ("unknown kid", "unknown_key", lambda k, o: sign(k, claims(), kid="nope")),
        ("no kid", "unknown_key", lambda k, o: jwt.encode(claims(), k.key, algorithm=k.algorithm)),
        ("expired", "token_expired", lambda k, o: sign(k, claims(iat=now() - 1000, nbf=now() - 1000, exp=now() - 100))),
        ("not yet valid", "not_yet_valid", lambda k, o: sign(k, claims(nbf=now() + 300))),
        ("wrong audience", "audience_mismatch", lambda k, o: sign(k, claims(aud="urn:other"))),
        ("no audience", "missing_claim", lambda k, o: sign(k, claims(aud=None))),
        ("no exp", "missing_claim", lambda k, o: sign(k, claims(exp=None))),
        ("no iat", "missing_claim", lambda k, o: sign(k, claims(iat=None))),
        ("no sub", "missing_claim", lambda k, o: sign(k, claims(sub=None))),
        ("alg none", "algorithm_not_allowed", lambda k, o: f"{b64({'alg': 'none', 'kid': k.kid})}.{b64(claims())}."),
        ("alg NoNe", "algorithm_not_allowed", lambda k, o: f"{b64({'alg': 'NoNe', 'kid': k.kid})}.{b64(claims())}."),
        ("embedded jwk", "forbidden_header", lambda k, o: sign(k, claims(), jwk={"kty": "oct", "k": "AA"})),
        ("jku header", "forbidden_header", lambda k, o: sign(k, claims(), jku="http://127.0.0.1/keys")),
        ("crit header", "forbidden_header", lambda k, o: sign(k, claims(), crit=["exp"])),
        ("garbage", "malformed_token", lambda k, o: "not.a.jwt"),
        ("bad base64", "malformed_token", lambda k, o: "eyJ!!!.eyJ!!!.sig"),
        ("oversized", "token_too_large", lambda k, o: sign(k, claims(pad="x" * 9000))),
        ("tampered payload", "bad_signature", lambda k, o: _tamper(sign(k, claims()))),
    ]


def _tamper(token: str) -> str:
    header, payload, sig = token.split(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=="))
    data["sub"] = str(uuid.uuid4())
    return f"{header}.{b64(data)}.{sig}"


@pytest.mark.parametrize("name,code,build", _forgeries(), ids=[n for n, _, _ in _forgeries()])
def test_forged_and_broken_tokens_are_refused(key, name, code, build):
    other = make(KEY_TYPE_OF[key.algorithm])  # same algorithm, different key
    validator = TokenValidator([key.verification], audience=AUD)
    with pytest.raises(InvalidToken) as err:
        validator.validate(build(key, other))
    assert err.value.detail == "Invalid auth token"
    assert err.value.refusal.code == code


def test_alg_header_changed_to_another_algorithm_is_refused():
    key = make()
    token = sign(key, claims())
    _, payload, sig = token.split(".")
    changed = f"{b64({'alg': 'HS512', 'kid': key.kid, 'typ': 'JWT'})}.{payload}.{sig}"
    with pytest.raises(InvalidToken) as err:
        TokenValidator([key.verification], audience=AUD).validate(changed)
    assert err.value.refusal.code == "algorithm_not_allowed"


def test_hs_rs_confusion_public_key_as_secret_is_refused():
    rsa_key = make(keylib.KeyType.RSA)
    public_pem = rsa_key.verification.key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = b64({"alg": "HS256", "kid": rsa_key.kid, "typ": "JWT"})
    body = b64(claims())
    mac = hmac.new(public_pem, f"{header}.{body}".encode(), hashlib.sha256).digest()
    forged = f"{header}.{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(InvalidToken):
        TokenValidator([rsa_key.verification], audience=AUD).validate(forged)


def test_issuer_is_required_when_configured():
    key = make()
    validator = TokenValidator([key.verification], audience=AUD, issuer="taskgate")
    assert validator.validate(sign(key, claims(iss="taskgate"))).sub
    for bad, code in (({"iss": "someone-else"}, "issuer_mismatch"), ({}, "missing_claim")):
        with pytest.raises(InvalidToken) as err:
            validator.validate(sign(key, claims(**bad)))
        assert err.value.refusal.code == code


def test_leeway_accepts_slightly_expired_tokens():
    key = make()
    now = int(time.time())
    token = sign(key, claims(iat=now - 100, nbf=now - 100, exp=now - 5))
    assert TokenValidator([key.verification], audience=AUD, leeway=10).validate(token)
    with pytest.raises(InvalidToken) as err:
        TokenValidator([key.verification], audience=AUD, leeway=0).validate(token)
    assert err.value.refusal.code == "token_expired"


@pytest.mark.parametrize("sub", ["not-a-uuid", "", 12345])
def test_well_signed_non_uuid_subject_is_a_schema_error(sub):
    key = make()
    validator = TokenValidator([key.verification], audience=AUD)
    with pytest.raises(InvalidToken) as err:
        validator.validate(sign(key, claims(sub=sub)))
    assert err.value.detail.startswith("Invalid auth token")
    if sub == "not-a-uuid":
        assert isinstance(err.value, InvalidTokenClaims)


def test_a_refusal_of_the_jwt_library_not_named_otherwise_is_invalid_token():
    from taskgate.tokens.validator import _refusal_of

    assert _refusal_of(jwt.InvalidKeyError("a key PyJWT cannot use")).code == "invalid_token"
    assert _refusal_of(jwt.ExpiredSignatureError("late")).code == "token_expired"


def test_a_token_bound_to_a_key_carries_its_thumbprint(key):
    issuer = TokenIssuer(key, audience=AUD)
    validator = TokenValidator([key.verification], audience=AUD)
    jkt = base64.urlsafe_b64encode(hashlib.sha256(b"a public key").digest()).rstrip(b"=").decode()
    bound = validator.validate(issuer.issue(uuid.uuid4(), jkt=jkt))
    assert bound.jkt == jkt and bound.claims["cnf"] == {"jkt": jkt}
    assert validator.validate(issuer.issue(uuid.uuid4())).jkt is None  # a bearer token


@pytest.mark.parametrize("cnf", [
    {}, {"jkt": ""}, {"jkt": "short"}, {"jkt": "=" * 43}, {"jkt": 42}, {"x5t#S256": "A" * 43},
    "A" * 43, None, [],
])
def test_a_binding_that_cannot_be_enforced_refuses_the_token(cnf):
    # Read as a bearer token, a token with a confirmation taskgate does not understand would
    # be usable by whoever copied it.
    key = make()
    validator = TokenValidator([key.verification], audience=AUD)
    payload = claims()
    payload["cnf"] = cnf
    with pytest.raises(InvalidTokenClaims, match="cnf"):
        validator.validate(sign(key, payload))
