import json
import stat

import pytest

from taskgate.tokens import keys as keylib


@pytest.mark.parametrize("key_type", [keylib.KeyType.ED25519, keylib.KeyType.RSA])
def test_pem_round_trip_keeps_kid_and_algorithm(tmp_path, key_type):
    path = tmp_path / "k.pem"
    private = keylib.generate_private_key(key_type)
    keylib.write_private_key(path, private)
    loaded = keylib.load_signing_key(path)
    assert loaded.kid == keylib.signing_key_from_private(private).kid
    assert loaded.algorithm == keylib.ALGORITHM[key_type]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_write_private_key_never_overwrites(tmp_path):
    path = tmp_path / "k.pem"
    keylib.write_private_key(path, keylib.generate_private_key(keylib.KeyType.ED25519))
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        keylib.write_private_key(path, keylib.generate_private_key(keylib.KeyType.ED25519))
    assert path.read_bytes() == before


def test_kid_is_rfc7638_thumbprint():
    # RFC 7638 §3.1 example key and its published thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSo"
        "c_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_"
        "FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert keylib.thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_jwks_round_trip_and_secrets_are_never_published():
    signing = keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))
    secret = keylib.signing_key_from_secret(keylib.generate_secret())
    document = keylib.jwks_document([signing.verification, secret.verification])
    assert [k["kid"] for k in document["keys"]] == [signing.kid]
    assert "d" not in document["keys"][0]
    (parsed,) = keylib.parse_jwks(json.loads(json.dumps(document)))
    assert (parsed.kid, parsed.algorithm) == (signing.kid, "EdDSA")


def test_jwks_with_private_key_or_wrong_alg_is_refused():
    private = keylib.generate_private_key(keylib.KeyType.ED25519)
    from jwt.algorithms import OKPAlgorithm

    private_jwk = OKPAlgorithm.to_jwk(private, as_dict=True)
    with pytest.raises(keylib.KeyFileError, match="private"):
        keylib.parse_jwks({"keys": [private_jwk]})
    public_jwk = OKPAlgorithm.to_jwk(private.public_key(), as_dict=True)
    with pytest.raises(keylib.KeyFileError, match="alg"):
        keylib.parse_jwks({"keys": [{**public_jwk, "alg": "HS256"}]})
    with pytest.raises(keylib.KeyFileError, match="not accepted"):
        keylib.parse_jwks({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]})


def test_short_hs512_secret_is_refused():
    with pytest.raises(keylib.KeyFileError, match="64 bytes"):
        keylib.signing_key_from_secret("too-short")
