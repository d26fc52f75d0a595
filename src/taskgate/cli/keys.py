"""``taskgate keys``: signing keys and the public JWKS."""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path

import typer

from taskgate.cli.backend import require_local
from taskgate.cli.common import (
    console,
    fail,
    print_json,
    runtime_from_env,
    settings_from_env,
    with_session,
)

app = typer.Typer(
    help="Signing keys (on the server's host: they live in its data directory).",
    no_args_is_help=True,
)


class KeyType(str, Enum):
    """``taskgate.tokens.keys.KeyType``'s values, without importing the token code."""

    ED25519 = "ed25519"
    RSA = "rsa"
    HS512 = "hs512"


@app.command()
def generate(
    key_type: KeyType = typer.Option(KeyType.ED25519, "--type", help="Key type."),
    out: Path | None = typer.Option(
        None, help="Where to write the key. Default: the configured signing key file."
    ),
) -> None:
    """Create a signing key (Ed25519 or RSA-2048 PEM), or print an HS512 secret."""
    require_local("keys generate")
    from taskgate.tokens import keys as keylib

    if key_type is KeyType.HS512:
        secret = keylib.generate_secret()
        if out is None:
            typer.echo(secret)
            return
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(out, "x", opener=lambda p, flags: os.open(p, flags, 0o600)) as fh:
                fh.write(secret + "\n")
        except FileExistsError:
            raise fail(f"{out} exists; refusing to overwrite a secret") from None
        console.print(f"wrote HS512 secret to {out}; set TASKGATE_JWT_SECRET to its content")
        return
    path = out or settings_from_env().effective_signing_key_file
    try:
        private = keylib.generate_private_key(keylib.KeyType(key_type.value))
        keylib.write_private_key(path, private)
    except FileExistsError:
        raise fail(f"{path} exists; refusing to overwrite a signing key") from None
    key = keylib.load_signing_key(path)
    console.print(f"wrote {key.algorithm} key {key.kid} to {path}", highlight=False)


@app.command()
def rotate(
    key_type: KeyType = typer.Option(KeyType.ED25519, "--type", help="New key type."),
    wait: float | None = typer.Option(
        None, help="Seconds to let every server accept the new key first. "
        "Default: twice TASKGATE_KEY_RELOAD_SECONDS, plus one."
    ),
) -> None:
    """Replace the signing key without downtime (old tokens stay valid until they expire)."""
    require_local("keys rotate")
    from taskgate.key_rotation import rotate_signing_key
    from taskgate.tokens import keys as keylib

    settings = settings_from_env()
    if key_type is KeyType.HS512:
        raise fail("rotate to an Ed25519 or RSA key; HS512 secrets change with TASKGATE_JWT_SECRET", 2)
    propagation = wait if wait is not None else 2 * settings.key_reload_seconds + 1
    console.print(f"new key accepted everywhere in {propagation:.1f} s, then it signs ...")
    try:
        old, new = rotate_signing_key(
            settings, keylib.KeyType(key_type.value), propagation_wait=propagation
        )
    except keylib.KeyFileError as exc:
        raise fail(str(exc)) from None
    console.print(f"signing key rotated: {old} -> {new}", highlight=False)


@app.command()
def jwks() -> None:
    """Print the public JWKS document (what /.well-known/jwks.json serves)."""
    require_local("keys jwks")
    from taskgate.tokens import jwks_document

    print_json(jwks_document(runtime_from_env().validator.keys))


@app.command("rotate-fernet")
def rotate_fernet() -> None:
    """Re-encrypt stored secrets under a new Fernet key.

    With the key file (the default), a new key is put first in it and every variable value,
    connection password and extra is re-encrypted; the old keys stay in the file for values
    written meanwhile by other processes, and can be removed afterwards. With
    TASKGATE_FERNET_KEYS, put the new key first in the variable, then run this.
    """
    require_local("keys rotate-fernet")
    from taskgate.services import connections, secrets, variables

    settings = settings_from_env()
    if settings.fernet_keys is None and settings.fernet_key_file.exists():
        secrets.prepend_key(settings.fernet_key_file)

    async def work(session, runtime):  # type: ignore[no-untyped-def]
        box = runtime.secrets
        return (
            await variables.reencrypt(session, box),
            await connections.reencrypt(session, box),
        )

    n_vars, n_conns = with_session(work)
    console.print(f"re-encrypted {n_vars} variables and {n_conns} connections")
