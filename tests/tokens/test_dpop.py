"""DPoP proofs (RFC 9449) with real Ed25519 and P-256 keys: accepted, and refused for each
reason on its own."""

import base64
import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from taskgate.tokens.dpop import (
    MAX_PROOF_BYTES,
    DPoPProof,
    DPoPReason,
    DPoPRefusal,
    access_token_hash,
    jwk_thumbprint,
    normalize_htu,
    verify_proof,
)

URL = "https://taskgate.example/execution/task-instances/1/heartbeat"
METHOD = "PUT"
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ0aSJ9.c2lnbmF0dXJl-access-token"
NOW = 1_800_000_000.0


class Signer:
    """A client's key pair, and the proofs it makes."""

    def __init__(self, alg: str) -> None:
        self.alg = alg
        if alg == "EdDSA":
            self.key = ed25519.Ed25519PrivateKey.generate()
            self.jwk = OKPAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            self.private_jwk = OKPAlgorithm.to_jwk(self.key, as_dict=True)
        else:
            self.key = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
            self.private_jwk = ECAlgorithm.to_jwk(self.key, as_dict=True)

    def claims(self, **over):
        base = {"jti": uuid.uuid4().hex, "htm": METHOD, "htu": URL, "iat": int(NOW),
                "ath": access_token_hash(TOKEN)}
        base.update(over)
        return {k: v for k, v in base.items() if v is not None}

    def proof(self, *, alg=None, key=None, headers=None, **claims) -> str:
        header = {"typ": "dpop+jwt", "jwk": self.jwk}
        header.update(headers or {})
        header = {k: v for k, v in header.items() if v is not None}
        return jwt.encode(self.claims(**claims), key if key is not None else self.key,
                          algorithm=alg or self.alg, headers=header)


@pytest.fixture(params=["EdDSA", "ES256"])
def signer(request):
    return Signer(request.param)


def verify(proof, **over):
    kwargs = {"method": METHOD, "url": URL, "now": NOW}
    kwargs.update(over)
    return verify_proof(proof, **kwargs)


def b64(data) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- accepted proofs ------------------------------------------------------------------


def test_good_proof_is_accepted_and_names_its_key(signer):
    proof = signer.proof(jti="one", nonce="n-1")
    accepted = verify(proof, access_token=TOKEN, expected_jkt=jwk_thumbprint(signer.jwk),
                      nonce="n-1")
    assert accepted == DPoPProof(jkt=jwk_thumbprint(signer.jwk), jti="one", iat=int(NOW),
                                 htm=METHOD, htu=URL, nonce="n-1")


def test_proof_without_access_token_needs_no_ath(signer):
    accepted = verify(signer.proof(ath=None))
    assert accepted.jkt == jwk_thumbprint(signer.jwk) and accepted.nonce is None


def test_nonce_may_be_checked_by_a_callable(signer):
    seen = []
    verify(signer.proof(nonce="fresh"), nonce=lambda n: seen.append(n) or n == "fresh")
    assert seen == ["fresh"]


@pytest.mark.parametrize("htu,url", [
    (URL, URL + "?limit=10#frag"),  # query and fragment of the request are ignored
    (URL + "?x=1", URL),  # ... and of htu
    ("HTTPS://TaskGate.Example:443/execution/task-instances/1/heartbeat", URL),
    ("http://taskgate.example:80/", "http://taskgate.example"),
    ("https://[::1]:8443/x", "https://[::1]:8443/x"),
])
def test_equivalent_urls_match(signer, htu, url):
    assert verify(signer.proof(htu=htu), url=url).htu == htu


@pytest.mark.parametrize("iat", [NOW - 60, NOW + 5, NOW - 59.5])
def test_iat_at_the_edges_of_the_window_is_accepted(signer, iat):
    assert verify(signer.proof(iat=iat)).iat == int(iat)


# -- refused proofs ---------------------------------------------------------------------


def _refusals():
    """(name, reason, build(signer, other) -> (proof, extra verify() arguments))."""

    def rsa_proof(s, o):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        rsa_jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return s.proof(alg="RS256", key=key, headers={"jwk": rsa_jwk}), {}

    def hs256_with_public_key(s, o):
        public = s.jwk["x"].encode()  # the only public value an attacker needs
        return s.proof(alg="HS256", key=public), {}

    def wrong_curve_jwk(s, o):
        other_type = Signer("ES256" if s.alg == "EdDSA" else "EdDSA")
        return s.proof(headers={"jwk": other_type.jwk}), {}

    def off_curve(s, o):
        if s.alg == "EdDSA":  # any 32 bytes name an Ed25519 key: use another bad length
            return s.proof(headers={"jwk": {**s.jwk, "x": b64(b"\0" * 31)}}), {}
        y = int.from_bytes(base64.urlsafe_b64decode(s.jwk["y"] + "=="), "big") ^ 1
        return s.proof(headers={"jwk": {**s.jwk, "y": b64(y.to_bytes(32, "big"))}}), {}

    def tampered(s, o):
        header, _, signature = s.proof().split(".")
        return f"{header}.{b64(s.claims(htm='DELETE'))}.{signature}", {}

    def unsigned(s, o):
        return jwt.encode(s.claims(), None, algorithm="none",
                          headers={"typ": "dpop+jwt", "jwk": s.jwk}), {}

    def two_proofs(s, o):
        return s.proof() + "." + s.proof(), {}

    def json_serialization(s, o):
        header, payload, signature = s.proof().split(".")
        return json.dumps({"protected": header, "payload": payload, "signature": signature}), {}

    mk = {"access_token": TOKEN}  # most cases are sent with an access token
    return [
        ("oversized", "proof_too_large", lambda s, o: (s.proof(pad="x" * MAX_PROOF_BYTES), {})),
        ("garbage", "malformed_proof", lambda s, o: ("not-a-jwt", {})),
        ("garbage in three parts", "malformed_proof", lambda s, o: ("not.a.jwt", {})),
        ("two proofs", "malformed_proof", two_proofs),
        ("JSON serialization", "malformed_proof", json_serialization),
        ("crit header", "malformed_proof", lambda s, o: (s.proof(headers={"crit": ["exp"]}), {})),
        ("typ JWT", "proof_type_invalid", lambda s, o: (s.proof(headers={"typ": "JWT"}), {})),
        ("no typ", "proof_type_invalid", lambda s, o: (s.proof(headers={"typ": None}), {})),
        ("alg none", "proof_algorithm_not_allowed", unsigned),
        ("HS256 with the public key", "proof_algorithm_not_allowed", hs256_with_public_key),
        ("RS256", "proof_algorithm_not_allowed", rsa_proof),
        ("no jwk", "proof_key_invalid", lambda s, o: (s.proof(headers={"jwk": None}), {})),
        ("private jwk", "proof_key_invalid",
         lambda s, o: (s.proof(headers={"jwk": s.private_jwk}), {})),
        ("jwk not an object", "proof_key_invalid",
         lambda s, o: (s.proof(headers={"jwk": "key"}), {})),
        ("jwk of the other algorithm", "proof_key_invalid", wrong_curve_jwk),
        ("jwk alg disagrees", "proof_key_invalid",
         lambda s, o: (s.proof(headers={"jwk": {**s.jwk, "alg": "RS256"}}), {})),
        ("jwk x too short", "proof_key_invalid",
         lambda s, o: (s.proof(headers={"jwk": {**s.jwk, "x": s.jwk["x"][:20]}}), {})),
        ("jwk point not on the curve", "proof_key_invalid", off_curve),
        ("jwk of another key", "bad_proof_signature",
         lambda s, o: (s.proof(headers={"jwk": o.jwk}), {})),
        ("tampered claims", "bad_proof_signature", tampered),
        ("no jti", "proof_missing_claim", lambda s, o: (s.proof(jti=None), {})),
        ("no htm", "proof_missing_claim", lambda s, o: (s.proof(htm=None), {})),
        ("no htu", "proof_missing_claim", lambda s, o: (s.proof(htu=None), {})),
        ("no iat", "proof_missing_claim", lambda s, o: (s.proof(iat=None), {})),
        ("no ath with a token", "proof_missing_claim", lambda s, o: (s.proof(ath=None), mk)),
        ("iat not a number", "malformed_proof", lambda s, o: (s.proof(iat="now"), {})),
        ("iat huge", "proof_not_yet_valid", lambda s, o: (s.proof(iat=10**400), {})),
        ("iat NaN", "malformed_proof", lambda s, o: (s.proof(iat=float("nan")), {})),
        ("jti not a string", "malformed_proof", lambda s, o: (s.proof(jti=7), {})),
        ("htu not a string", "malformed_proof", lambda s, o: (s.proof(htu=["/"]), {})),
        ("other method", "proof_method_mismatch", lambda s, o: (s.proof(htm="POST"), {})),
        ("method case", "proof_method_mismatch", lambda s, o: (s.proof(htm="put"), {})),
        ("other path", "proof_url_mismatch", lambda s, o: (s.proof(htu=URL + "x"), {})),
        ("other host", "proof_url_mismatch",
         lambda s, o: (s.proof(htu=URL.replace("taskgate.example", "evil.example")), {})),
        ("http for https", "proof_url_mismatch",
         lambda s, o: (s.proof(htu=URL.replace("https:", "http:")), {})),
        ("other port", "proof_url_mismatch",
         lambda s, o: (s.proof(htu=URL.replace(".example/", ".example:8443/")), {})),
        ("path case", "proof_url_mismatch", lambda s, o: (s.proof(htu=URL.upper()), {})),
        ("htu not a URL", "proof_url_mismatch", lambda s, o: (s.proof(htu="/execution"), {})),
        ("too old", "proof_expired", lambda s, o: (s.proof(iat=int(NOW) - 61), {})),
        ("from the future", "proof_not_yet_valid", lambda s, o: (s.proof(iat=int(NOW) + 6), {})),
        ("ath of another token", "access_token_hash_mismatch",
         lambda s, o: (s.proof(ath=access_token_hash(TOKEN + "x")), mk)),
        ("bound to another key", "key_mismatch",
         lambda s, o: (s.proof(), {**mk, "expected_jkt": jwk_thumbprint(o.jwk)})),
        ("nonce missing", "use_dpop_nonce", lambda s, o: (s.proof(), {**mk, "nonce": "n-2"})),
        ("nonce stale", "use_dpop_nonce",
         lambda s, o: (s.proof(nonce="n-1"), {**mk, "nonce": "n-2"})),
        ("nonce refused by the callable", "use_dpop_nonce",
         lambda s, o: (s.proof(nonce="n-1"), {**mk, "nonce": lambda n: False})),
    ]


@pytest.mark.parametrize("name,reason,build", _refusals(), ids=[n for n, _, _ in _refusals()])
def test_refusals(signer, name, reason, build):
    other = Signer(signer.alg)  # same algorithm, another key
    proof, extra = build(signer, other)
    with pytest.raises(DPoPRefusal) as err:
        verify(proof, **extra)
    refusal = err.value
    assert refusal.reason == reason and refusal.reason in DPoPReason
    # What the client may be told says neither the proof nor the token, nor a part of them.
    told = {str(refusal), refusal.message, repr(refusal)}
    for secret in [proof, TOKEN, *proof.split("."), *TOKEN.split(".")]:
        if len(secret) >= 8:
            assert not any(secret in text for text in told)


def test_the_first_failing_check_is_the_reason(signer):
    other = Signer(signer.alg)
    # Claims are only judged for a proof its own key signed.
    stale_forgery = signer.proof(iat=0, htm="GET", headers={"jwk": other.jwk})
    assert _reason(stale_forgery) == "bad_proof_signature"
    assert _reason(signer.proof(iat=0, headers={"typ": "JWT", "jwk": other.jwk})) == (
        "proof_type_invalid"
    )
    assert _reason(signer.proof(iat=0, htm="GET")) == "proof_method_mismatch"
    assert _reason(signer.proof(iat=0, ath="x"), access_token=TOKEN) == "proof_expired"
    assert _reason(signer.proof(ath="x"), access_token=TOKEN,
                   expected_jkt=jwk_thumbprint(other.jwk)) == "access_token_hash_mismatch"


def test_a_key_seen_before_still_verifies_every_signature(signer):
    """The key of a header already seen is reused, never the proof: a signature by
    another key under that same header is a forgery, and refused as one."""
    verify(signer.proof())  # the header, and its key, are now known
    other = Signer(signer.alg)
    forged = other.proof(headers={"jwk": signer.jwk})
    assert forged.split(".")[0] == signer.proof().split(".")[0]  # the very same header
    assert _reason(forged) == "bad_proof_signature"
    assert verify(signer.proof()).jkt == jwk_thumbprint(signer.jwk)


def test_a_refused_header_is_refused_every_time(signer):
    bad_type = signer.proof(headers={"typ": "JWT"})
    for _ in range(2):
        assert _reason(bad_type) == "proof_type_invalid"
    private = signer.proof(headers={"jwk": signer.private_jwk})
    for _ in range(2):
        assert _reason(private) == "proof_key_invalid"


def _reason(proof, **extra):
    with pytest.raises(DPoPRefusal) as err:
        verify(proof, **extra)
    return err.value.reason


def test_size_is_checked_before_anything_is_parsed():
    with pytest.raises(DPoPRefusal) as err:
        verify("!" * (MAX_PROOF_BYTES + 1))
    assert err.value.reason == "proof_too_large"
    with pytest.raises(DPoPRefusal) as err:
        verify(None)
    assert err.value.reason == "malformed_proof"


def test_a_url_that_is_not_http_is_the_callers_error(signer):
    with pytest.raises(ValueError):
        verify(signer.proof(), url="ftp://taskgate.example/")


# -- thumbprints, ath, htu -------------------------------------------------------------


def test_thumbprint_known_values():
    # RFC 8037 Appendix A.3 (Ed25519) and RFC 9449 §6.1 (the P-256 key of its examples).
    okp = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jwk_thumbprint(okp) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    p256 = {"kty": "EC", "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
            "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA", "crv": "P-256"}
    assert jwk_thumbprint(p256) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"


def test_thumbprint_is_stable_and_per_key(signer):
    jkt = jwk_thumbprint(signer.jwk)
    reordered = dict(reversed(list(signer.jwk.items())))
    spaced = json.loads(json.dumps(signer.jwk, indent=4, sort_keys=False))
    extras = {**signer.jwk, "kid": "mine", "use": "sig", "alg": signer.alg}
    assert jwk_thumbprint(reordered) == jwk_thumbprint(spaced) == jwk_thumbprint(extras) == jkt
    assert len(jkt) == 43 and "=" not in jkt
    assert jwk_thumbprint(Signer(signer.alg).jwk) != jkt


@pytest.mark.parametrize("jwk", [
    {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
    {"kty": "oct", "k": "c2VjcmV0"},
    {"kty": "OKP", "crv": "Ed25519"},  # no x
    {"kty": "OKP", "crv": "Ed25519", "x": 5},
    {"kty": ["OKP"], "crv": "Ed25519", "x": "AA"},
    "not a dict",
])
def test_thumbprint_refuses_other_keys(jwk):
    with pytest.raises(DPoPRefusal) as err:
        jwk_thumbprint(jwk)
    assert err.value.reason == "proof_key_invalid"


def test_thumbprint_refuses_a_private_key(signer):
    with pytest.raises(DPoPRefusal):
        jwk_thumbprint(signer.private_jwk)


def test_access_token_hash():
    # RFC 9449 §7.1's example.
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


@pytest.mark.parametrize("url,normal", [
    ("HTTPS://Example.COM:443/A/b?q=1#f", "https://example.com/A/b"),
    ("http://example.com:80", "http://example.com/"),
    ("http://example.com:8080/", "http://example.com:8080/"),
    ("https://example.com:80/", "https://example.com:80/"),
    ("https://[2001:DB8::1]:443/p", "https://[2001:db8::1]/p"),
    ("https://example.com/a%2Fb", "https://example.com/a%2Fb"),
])
def test_normalize_htu(url, normal):
    assert normalize_htu(url) == normal


@pytest.mark.parametrize("url", [
    "/relative", "ftp://example.com/", "https:///nohost", "https://user@example.com/",
    "https://example.com:99999/",
])
def test_normalize_htu_refuses_what_is_not_an_http_url(url):
    with pytest.raises(ValueError):
        normalize_htu(url)


def test_the_real_clock_works_too(signer):
    now = time.time()
    assert verify(signer.proof(iat=int(now)), now=now).jti


def test_every_proof_refusal_is_a_refusal_of_the_security_layers():
    # The security layers answer a refused proof with the Refusal of the same code (its
    # status, WWW-Authenticate and metric label): a new reason here needs one there.
    from taskgate.tokens.refusals import PROOF_REFUSALS

    assert {reason.value for reason in DPoPReason} <= {r.code for r in PROOF_REFUSALS}


@pytest.mark.parametrize("sent, signed", [
    ("https://h/execution/variables/a%20b", "https://h/execution/variables/a%20b"),
    ("https://h/execution/variables/a%2fb", "https://h/execution/variables/a%2Fb"),  # hex case
    ("https://h/execution/variables/%7Euser", "https://h/execution/variables/~user"),  # unreserved
    ("https://h/execution/variables/%C3%A9", "https://h/execution/variables/%c3%a9"),
])
def test_percent_encodings_are_compared_normalized(sent, signed):
    assert normalize_htu(sent) == normalize_htu(signed)


def test_an_encoded_slash_is_not_a_slash():
    assert normalize_htu("https://h/a%2Fb") != normalize_htu("https://h/a/b")
