"""Signing-key rotation without downtime (``taskgate keys rotate``).

1. A new key is generated; its public half, and the current key's, go into the
   accepted-keys JWKS file, which every server validates with.
2. We wait until every server has reloaded its keys (``key_reload_seconds``, twice over),
   so all of them accept tokens signed by the new key before any exists.
3. The new key replaces the signing key file (an atomic rename). Servers sign with it
   after their next reload; tokens signed by the old key stay valid until they expire,
   because the old public key stays accepted.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from taskgate.settings import Settings
from taskgate.tokens import keys as keylib


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb", opener=lambda p, flags: os.open(p, flags, mode)) as fh:
        fh.write(data)
    os.replace(tmp, path)


def rotate_signing_key(
    settings: Settings, key_type: keylib.KeyType, *, propagation_wait: float
) -> tuple[str, str]:
    """Rotate the signing key; returns (old kid, new kid)."""
    if settings.jwt_secret is not None:
        raise keylib.KeyFileError("HS512 secrets are rotated by changing TASKGATE_JWT_SECRET")
    path = settings.effective_signing_key_file
    if not path.exists():
        raise keylib.KeyFileError(f"{path} does not exist: nothing to rotate")
    current = keylib.load_signing_key(path)
    new_private = keylib.generate_private_key(key_type)
    new = keylib.signing_key_from_private(new_private)

    accepted_file = settings.accepted_keys_file
    accepted = keylib.load_jwks(str(accepted_file)) if accepted_file.exists() else []
    for key in (current.verification, new.verification):
        if all(key.kid != known.kid for known in accepted):
            accepted.append(key)
    document = json.dumps(keylib.jwks_document(accepted), indent=2).encode()
    _write_atomically(accepted_file, document, 0o644)

    time.sleep(propagation_wait)
    _write_atomically(path, keylib.private_key_pem(new_private), 0o600)
    return current.kid, new.kid
