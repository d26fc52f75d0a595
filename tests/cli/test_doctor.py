"""`taskgate doctor` as an operator runs it (a process): each part of the configuration
broken in turn is named with its fix, and `--token` says why a token is refused."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import jwt
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text, update

from taskgate.db import migrate
from taskgate.db.models import TaskInstance
from taskgate.db.session import create_engine
from taskgate.settings import Settings
from taskgate.tokens import TokenIssuer
from taskgate.tokens import keys as keylib
from tests.support.processes import TASKGATE, free_port, run_cli, serve_env

pytestmark = pytest.mark.integration

CHECKS = ["signing key", "jwks", "accepted keys", "audience/issuer", "database", "clock",
          "schema", "fernet keys"]


def doctor(env: dict[str, str], *args: str, code: int) -> subprocess.CompletedProcess[str]:
    result = run_cli(env, "doctor", *args, check=False)
    assert result.returncode == code, result.stdout + result.stderr
    return result


def failed_checks(env: dict[str, str], **extra: str) -> dict[str, dict[str, str]]:
    """The checks `doctor --json` failed (by name), with ``extra`` in its environment."""
    report = json.loads(doctor({**env, **extra}, "--json", code=1).stdout)
    assert report["ok"] is False
    return {c["name"]: c for c in report["checks"] if c["status"] == "fail"}


# --- the configuration, on a migrated SQLite database of its own ---------------------------


@pytest.fixture
def local(tmp_path: Path) -> dict[str, str]:
    """A sound configuration: a signing key and a database at head (Fernet key not made
    yet: a server makes it at its first start)."""
    data = tmp_path / "data"
    keylib.write_private_key(
        data / "signing-key.pem", keylib.generate_private_key(keylib.KeyType.ED25519)
    )
    settings = Settings(data_dir=data)

    async def migrated() -> None:
        engine = create_engine(settings.effective_database_url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrated())
    return serve_env(settings)


def signing_key(env: dict[str, str]) -> keylib.SigningKey:
    return keylib.load_signing_key(Path(env["TASKGATE_DATA_DIR"]) / "signing-key.pem")


def test_a_corrupt_signing_key_is_named_with_its_fix(local) -> None:
    (Path(local["TASKGATE_DATA_DIR"]) / "signing-key.pem").write_text("not a key\n")
    failed = failed_checks(local)
    assert list(failed) == ["signing key"]
    assert "is not an unencrypted PEM private key" in failed["signing key"]["detail"]
    assert "taskgate keys generate" in failed["signing key"]["fix"]


def test_an_unreadable_signing_key_is_named_with_its_fix(local, tmp_path) -> None:
    # Tests run as root, for whom no mode bit makes a file unreadable: a directory is.
    failed = failed_checks(local, TASKGATE_SIGNING_KEY_FILE=str(tmp_path))
    assert list(failed) == ["signing key"]
    assert f"{tmp_path} cannot be read" in failed["signing key"]["detail"]
    assert "TASKGATE_SIGNING_KEY_FILE" in failed["signing key"]["fix"]


def test_an_unreachable_jwks_url(local) -> None:
    url = f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"  # nobody listens
    result = doctor({**local, "TASKGATE_JWKS_URL": url}, code=1)
    assert re.search(rf"^FAIL\s+jwks\s+{re.escape(url)} cannot be read", result.stdout, re.MULTILINE)
    assert "unset TASKGATE_JWKS_URL" in result.stdout
    assert "1 of 8 checks failed" in result.stdout


def test_a_jwks_must_publish_the_signing_key(local, tmp_path) -> None:
    other = keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))
    stranger = tmp_path / "other.jwks.json"
    stranger.write_text(json.dumps(keylib.jwks_document([other.verification])))
    failed = failed_checks(local, TASKGATE_JWKS_URL=str(stranger))
    assert list(failed) == ["jwks"]
    kid = signing_key(local).kid
    assert f"lacks this node's signing key, kid {kid} (it has: {other.kid})" in (
        failed["jwks"]["detail"]
    )
    assert "taskgate keys jwks" in failed["jwks"]["fix"]

    published = tmp_path / "published.jwks.json"
    published.write_text(run_cli(local, "keys", "jwks").stdout)
    report = json.loads(doctor({**local, "TASKGATE_JWKS_URL": str(published)}, "--json",
                               code=0).stdout)
    assert "has the signing key" in report["checks"][1]["detail"]


def test_a_corrupt_accepted_keys_file(local) -> None:
    (Path(local["TASKGATE_DATA_DIR"]) / "accepted-keys.jwks.json").write_text("{")
    failed = failed_checks(local)
    assert list(failed) == ["accepted keys"]
    assert "remove it" in failed["accepted keys"]["fix"]


def test_an_issuer_set_but_empty(local) -> None:
    failed = failed_checks(local, TASKGATE_ISSUER="")
    assert list(failed) == ["audience/issuer"]
    assert "the issuer is set but empty" in failed["audience/issuer"]["detail"]
    assert "unset TASKGATE_ISSUER" in failed["audience/issuer"]["fix"]


def test_an_unreachable_database_with_its_password_masked(local) -> None:
    url = f"postgresql+asyncpg://taskgate:s3cret-pw@127.0.0.1:{free_port()}/taskgate"
    result = doctor({**local, "TASKGATE_DATABASE_URL": url}, "--json", code=1)
    assert "s3cret-pw" not in result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    assert checks["database"]["status"] == "fail"
    assert checks["database"]["detail"].startswith(
        "PostgreSQL at postgresql+asyncpg://taskgate:***@127.0.0.1:"
    )
    assert "unreachable" in checks["database"]["detail"]
    assert "TASKGATE_DATABASE_URL" in checks["database"]["fix"]
    assert [checks[n]["status"] for n in ("clock", "schema", "fernet keys")] == ["skip"] * 3


def test_a_missing_sqlite_database_is_not_created(tmp_path) -> None:
    env = serve_env(Settings(data_dir=tmp_path / "empty"))
    failed = failed_checks(env)
    assert list(failed) == ["database"]
    assert "taskgate db upgrade" in failed["database"]["fix"]
    assert not (tmp_path / "empty" / "taskgate.db").exists()
    assert not (tmp_path / "empty" / "signing-key.pem").exists()


def test_doctor_is_a_local_command(local) -> None:
    result = doctor({**local, "TASKGATE_SERVER": "http://127.0.0.1:9"}, code=2)
    assert "cannot run against http://127.0.0.1:9" in result.stderr


# --- the configuration, on each database backend --------------------------------------------


@pytest.fixture
def env(settings, runtime) -> dict[str, str]:
    return serve_env(settings)


def test_a_sound_configuration_passes_every_check(env, settings) -> None:
    result = doctor(env, code=0)
    assert "all checks passed" in result.stdout
    kind = "PostgreSQL" if settings.database_url else "SQLite"
    assert re.search(rf"^ok\s+database\s+{kind} at ", result.stdout, re.MULTILINE)
    report = json.loads(doctor(env, "--json", code=0).stdout)
    assert report["ok"] is True
    assert [(c["name"], c["status"]) for c in report["checks"]] == [(n, "ok") for n in CHECKS]
    assert "no stored secret to try" in report["checks"][-1]["detail"]
    assert f"at head ({migrate.HEAD})" in report["checks"][-2]["detail"]


async def test_a_schema_behind_head(env, runtime) -> None:
    async with runtime.engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    failed = failed_checks(env)
    assert list(failed) == ["schema"]
    assert f"at 0001, behind head {migrate.HEAD}" in failed["schema"]["detail"]
    assert "taskgate db upgrade" in failed["schema"]["fix"]

    async with runtime.engine.begin() as connection:
        await connection.execute(text("DELETE FROM alembic_version"))
    assert "never migrated" in failed_checks(env)["schema"]["detail"]


def test_a_stored_secret_under_other_fernet_keys(env) -> None:
    run_cli(env, "variables", "set", "greeting", "hello")
    report = json.loads(doctor(env, "--json", code=0).stdout)
    assert "decrypt variable 'greeting'" in report["checks"][-1]["detail"]

    other = Fernet.generate_key().decode()
    result = doctor({**env, "TASKGATE_FERNET_KEYS": other}, code=1)
    assert re.search(r"^FAIL\s+fernet keys\s+variable 'greeting' does not decrypt with the "
                     r"keys from TASKGATE_FERNET_KEYS", result.stdout, re.MULTILINE)
    assert "put the key that encrypted it back" in result.stdout
    assert "hello" not in result.stdout


# --- --token: the validator's refusals (no database needed) ---------------------------------


def _issued(env: dict[str, str], *, shift: float = 0, **options: object) -> str:
    """A token of this server's key, issued ``shift`` seconds from now."""
    issuer = TokenIssuer(signing_key(env), audience="urn:taskgate:task",
                         clock=lambda: time.time() + shift, **options)  # type: ignore[arg-type]
    return issuer.issue(uuid.uuid4())


def _foreign_key() -> keylib.SigningKey:
    return keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))


def _tampered(env: dict[str, str]) -> str:
    # Signed by another key under this server's kid.
    key, other = signing_key(env), _foreign_key()
    claims = jwt.decode(_issued(env), options={"verify_signature": False})
    return jwt.encode(claims, other.key, algorithm="EdDSA", headers={"kid": key.kid})


def _hs256(env: dict[str, str]) -> str:
    claims = jwt.decode(_issued(env), options={"verify_signature": False})
    return jwt.encode(claims, "x" * 64, algorithm="HS256", headers={"kid": signing_key(env).kid})


TOKEN_CASES = {
    "expired": (lambda env: _issued(env, shift=-3600), "token_expired",
                r"expired 3\d{3} s ago \(exp \S+; leeway 10 s\)"),
    "not yet valid": (lambda env: _issued(env, shift=120), "not_yet_valid",
                      r"not valid for another 1[01]\d s \(iat/nbf 1[12]\d s ahead of this clock"),
    "audience": (lambda env: TokenIssuer(signing_key(env), audience="urn:other").issue(
                 uuid.uuid4()), "audience_mismatch",
                 r'aud is "urn:other", expected "urn:taskgate:task"'),
    "unknown kid": (lambda env: TokenIssuer(_foreign_key(), audience="urn:taskgate:task").issue(
                    uuid.uuid4()), "unknown_key",
                    r"kid \"[\w-]+\" not in this server's keys \(known: [\w-]+\)"),
    "algorithm": (_hs256, "algorithm_not_allowed", r'alg "HS256" is not kid [\w-]+\'s EdDSA'),
    "bad signature": (_tampered, "bad_signature", r"signature does not verify with kid [\w-]+"),
    "malformed": (lambda env: "not-a-jwt", "malformed_token", r"malformed token"),
}


@pytest.mark.parametrize("case", TOKEN_CASES)
def test_a_refused_token_is_explained(local, case) -> None:
    make, code, phrase = TOKEN_CASES[case]
    token = make(local)
    result = doctor(local, "--token", token, code=1)
    verdict, *explanation = result.stdout.splitlines()
    assert verdict == f"refused: {code}"
    assert re.search(phrase, "\n".join(explanation)), result.stdout
    assert token not in result.stdout and token.rsplit(".", 1)[-1] not in result.stdout
    if case == "unknown kid":
        assert signing_key(local).kid in result.stdout  # the known kids are listed


def test_the_verdict_as_json_and_from_stdin(local) -> None:
    token = _issued(local, shift=-3600)
    result = subprocess.run(
        [*TASKGATE, "doctor", "--token", "-", "--json"], input=token,
        env=local, capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 1, result.stderr
    verdict = json.loads(result.stdout)
    assert (verdict["accepted"], verdict["reason"]) == (False, "token_expired")
    assert verdict["explanation"][0].startswith("expired ")
    assert doctor(local, "--ti", str(uuid.uuid4()), code=2).stderr


# --- --token: the token gate, on each database backend --------------------------------------


async def test_an_accepted_token_and_another_tis(env, factory) -> None:
    ti = await factory.queued_ti()
    token = factory.token(ti.id)
    accepted = doctor(env, "--token", token, "--ti", str(ti.id), code=0).stdout
    assert accepted.splitlines()[0] == "accepted"
    # 600 s to live when minted, less the CLI's start-up, rounded to the second.
    assert re.search(rf"execution token for TI {ti.id}, expires in (59\d|600) s", accepted)
    assert f"TI dag/{ti.run_id}/task is queued" in accepted

    other = uuid.uuid4()
    refused = doctor(env, "--token", token, "--ti", str(other), code=1).stdout
    assert refused.splitlines() == ["refused: subject_mismatch",
                                    f"  token is for TI {ti.id}, not --ti {other}"]


async def test_a_workload_token_once_used(env, factory, client) -> None:
    fresh = await factory.queued_ti()
    accepted = doctor(env, "--token", fresh.workload_token, code=0).stdout
    assert "scope 'workload' is only accepted on /run" in accepted

    ti, _execution = await factory.running_ti(client)
    refused = doctor(env, "--token", ti.workload_token, code=1).stdout
    assert refused.splitlines()[0] == "refused: workload_token_reused"
    assert "the workload token was already used" in refused


async def test_a_revoked_token(env, factory, runtime) -> None:
    ti = await factory.queued_ti()
    token = factory.token(ti.id)
    await asyncio.sleep(0.01)  # the watermark counts in milliseconds
    await runtime.lifecycle.revoke_tokens(ti.id)
    refused = doctor(env, "--token", token, code=1).stdout
    assert refused.splitlines()[0] == "refused: revoked"
    assert re.search(r"signed at \S+, before the TI's revocation at \S+", refused)
    fresh = factory.token(ti.id)
    assert doctor(env, "--token", fresh, code=0).stdout.startswith("accepted")


async def test_an_ended_tis_token(env, factory, runtime) -> None:
    ti = await factory.queued_ti()
    token = factory.token(ti.id)
    async with runtime.sessionmaker() as session:
        await session.execute(
            update(TaskInstance).where(TaskInstance.id == ti.id).values(state="success")
        )
        await session.commit()
    refused = doctor(env, "--token", token, code=1).stdout
    assert refused.splitlines()[0] == "refused: ti_ended"
    assert "the TI has ended (state success)" in refused
