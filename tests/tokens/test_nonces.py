"""DPoP nonces: minted with the shared Fernet keys, accepted by any replica holding them
while young enough, refused when old, forged or made with other keys."""

from cryptography.fernet import Fernet, MultiFernet

from taskgate.tokens.nonces import LIFETIME_SECONDS, ROTATE_SECONDS, Nonces


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_nonce_is_accepted_by_every_replica_with_the_keys_until_it_is_too_old():
    keys = MultiFernet([Fernet(Fernet.generate_key())])
    clock = Clock()
    minting, other_replica = Nonces(keys, clock), Nonces(keys, clock)
    nonce = minting.current()
    assert minting.accepts(nonce) and other_replica.accepts(nonce)
    clock.now += LIFETIME_SECONDS + 1
    assert not minting.accepts(nonce) and not other_replica.accepts(nonce)


def test_a_new_nonce_every_rotation_and_the_previous_one_still_good():
    clock = Clock()
    nonces = Nonces(MultiFernet([Fernet(Fernet.generate_key())]), clock)
    first = nonces.current()
    clock.now += ROTATE_SECONDS - 1
    assert nonces.current() == first
    clock.now += 2
    second = nonces.current()
    assert second != first
    assert nonces.accepts(first) and nonces.accepts(second)


def test_forged_and_foreign_nonces_are_refused():
    nonces = Nonces(MultiFernet([Fernet(Fernet.generate_key())]), Clock())
    foreign = Nonces(MultiFernet([Fernet(Fernet.generate_key())]), Clock()).current()
    for nonce in (foreign, "", "not-a-nonce", "é", nonces.current() + "x", Fernet(Fernet.generate_key()).encrypt(b"x").decode()):
        assert not nonces.accepts(nonce), nonce
