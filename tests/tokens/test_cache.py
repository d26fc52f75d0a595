import time
import uuid

import jwt
import pytest

from taskgate.tokens import CachedTokenValidator, InvalidToken, TokenIssuer, TokenValidator
from taskgate.tokens import keys as keylib

AUD = "urn:taskgate:task"


@pytest.fixture
def key():
    return keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))


def test_repeated_token_is_checked_once(key):
    cached = CachedTokenValidator(TokenValidator([key.verification], audience=AUD))
    token = TokenIssuer(key, audience=AUD).issue(uuid.uuid4())
    first, second = cached.validate(token), cached.validate(token)
    assert first is second and cached.signature_checks == 1


def test_failures_are_not_cached_and_expiry_is_honoured(key):
    cached = CachedTokenValidator(TokenValidator([key.verification], audience=AUD, leeway=0))
    token = TokenIssuer(key, audience=AUD).issue(uuid.uuid4(), ttl=1)
    cached.validate(token)
    time.sleep(1.1)  # past exp: the cached entry is not used, and the validator refuses it
    with pytest.raises(InvalidToken):
        cached.validate(token)
    other = keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))
    forged = jwt.encode({"aud": AUD, "sub": str(uuid.uuid4()), "iat": time.time(),
                         "exp": time.time() + 60}, other.key, algorithm="EdDSA",
                        headers={"kid": key.kid})
    for _ in range(2):  # a bad signature is checked again each time: never cached
        with pytest.raises(InvalidToken):
            cached.validate(forged)
    assert cached.signature_checks == 4


def test_cache_is_bounded(key):
    cached = CachedTokenValidator(TokenValidator([key.verification], audience=AUD), max_entries=3)
    issuer = TokenIssuer(key, audience=AUD)
    tokens = [issuer.issue(uuid.uuid4()) for _ in range(5)]
    for token in tokens:
        cached.validate(token)
    assert len(cached._entries) == 3
    cached.validate(tokens[0])  # evicted: checked again
    assert cached.signature_checks == 6
