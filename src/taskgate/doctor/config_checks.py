"""``taskgate doctor``: the configuration checked the way a server uses it.

Each check loads what a server loads, with the server's own code (``taskgate.runtime``,
``taskgate.tokens.keys``, ``taskgate.db.migrate``, ``SecretBox``), and says on failure
what to change. Nothing here creates a file: where a server would create one on its
first start (signing key, Fernet key, SQLite database), the check says so instead.
The token verdict (``doctor --token``) is ``taskgate.doctor.token_verdict``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from taskgate.db import migrate
from taskgate.db.models import Connection, Variable
from taskgate.runtime import engine_from_settings, load_secret_box
from taskgate.services.secrets import SecretKeyError
from taskgate.settings import Settings
from taskgate.tokens import keys as keylib

OK, FAIL, SKIP = "ok", "fail", "skip"


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` is ok, fail or skip (could not be checked
    because an earlier check failed); ``fix`` says what to change, for a failure."""

    name: str
    status: str
    detail: str
    fix: str | None = None

    @property
    def failed(self) -> bool:
        return self.status == FAIL

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail, "fix": self.fix}


def describe_error(exc: BaseException, database_url: str | None = None) -> str:
    """An exception in one line, without SQLAlchemy's SQL and links, and without the
    password of ``database_url`` should a driver ever repeat it."""
    cause = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    words = str(cause).strip().splitlines()
    message = f"{type(cause).__name__}: {words[0]}" if words else type(cause).__name__
    password = make_url(database_url).password if database_url else None
    return message.replace(str(password), "***") if password else message


def masked_url(url: str) -> str:
    """The database URL as it may be shown: the password replaced by ***."""
    return make_url(url).render_as_string(hide_password=True)


# --- keys -----------------------------------------------------------------------------


def check_signing_key(settings: Settings) -> tuple[Check, keylib.SigningKey | None]:
    """The signing key as ``runtime.load_key_material`` picks it: the HS512 secret, else
    the key file, else none (validation-only with a JWKS; otherwise created at start)."""
    name = "signing key"
    if settings.jwt_secret is not None:
        try:
            key = keylib.signing_key_from_secret(settings.jwt_secret.get_secret_value())
        except keylib.KeyFileError as exc:
            return Check(name, FAIL, f"TASKGATE_JWT_SECRET: {exc}",
                         "set TASKGATE_JWT_SECRET to a secret of at least 64 bytes "
                         "(`taskgate keys generate --type hs512` prints one)"), None
        return Check(name, OK, f"HS512 (TASKGATE_JWT_SECRET), kid {key.kid}"), key
    path = settings.effective_signing_key_file
    if not path.exists():
        if settings.jwks_url:
            return Check(name, OK, f"none at {path}: a validation-only node "
                         "(keys from TASKGATE_JWKS_URL)"), None
        return Check(name, OK, f"{path} does not exist yet: `taskgate serve` creates an "
                     "Ed25519 key there at its first start"), None
    try:
        key = keylib.load_signing_key(path)
    except OSError as exc:
        return Check(name, FAIL, f"{path} cannot be read ({exc.strerror or exc})",
                     "make it a file the server's user can read (owner only, mode 0600), "
                     "or point TASKGATE_SIGNING_KEY_FILE at the key"), None
    except keylib.KeyFileError as exc:
        return Check(name, FAIL, str(exc),
                     f"restore the key from a backup; or move {path} away and create a new "
                     "one with `taskgate keys generate` (tokens signed by the old key are "
                     "then refused)"), None
    return Check(name, OK, f"{key.algorithm}, kid {key.kid} ({path})"), key


def check_jwks(settings: Settings, signing: keylib.SigningKey | None) -> Check:
    """``TASKGATE_JWKS_URL`` fetched as the server fetches it; it must publish this
    node's signing key, or the nodes validating with it refuse this node's tokens."""
    name = "jwks"
    url = settings.jwks_url
    if not url:
        return Check(name, OK, "TASKGATE_JWKS_URL not set: only this node's own keys "
                     "and the accepted-keys file count")
    try:
        keys = keylib.load_jwks(url, timeout=5.0)
    except keylib.KeyFileError as exc:
        return Check(name, FAIL, f"{url} is not a usable JWKS: {exc}",
                     "point TASKGATE_JWKS_URL at a JWKS document ({\"keys\": [...]}, public "
                     "OKP or RSA keys), e.g. another server's /.well-known/jwks.json")
    except Exception as exc:  # noqa: BLE001 - any failure to fetch it is this check's answer
        return Check(name, FAIL, f"{url} cannot be read: {describe_error(exc)}",
                     "start the server that serves it or correct the URL (it must be "
                     "reachable from this host), or unset TASKGATE_JWKS_URL; a server does "
                     "not start without it")
    kids = [key.kid for key in keys]
    listed = ", ".join(kids) or "no keys"
    if signing is None:
        return Check(name, OK, f"{url}: {listed} (this node only validates)")
    if signing.verification.public_jwk is None:
        return Check(name, OK, f"{url}: {listed}; the HS512 secret is never published: "
                     "only nodes with the same TASKGATE_JWT_SECRET accept this node's tokens")
    if signing.kid not in kids:
        return Check(name, FAIL, f"{url} lacks this node's signing key, kid {signing.kid} "
                     f"(it has: {listed})",
                     "publish this node's public key there (`taskgate keys jwks` prints it), "
                     "or point TASKGATE_JWKS_URL at the JWKS of the node that signs; nodes "
                     "validating with it refuse this node's tokens as unknown_key")
    return Check(name, OK, f"{url}: {listed} (has the signing key)")


def check_accepted_keys(settings: Settings) -> Check:
    """The accepted-keys file ``taskgate keys rotate`` keeps, read as the server reads it."""
    name = "accepted keys"
    path = settings.accepted_keys_file
    if not path.exists():
        return Check(name, OK, f"none ({path}: written by `taskgate keys rotate`)")
    try:
        keys = keylib.load_jwks(str(path))
    except (OSError, ValueError) as exc:  # KeyFileError and bad JSON are ValueErrors
        return Check(name, FAIL, f"{path} cannot be used: {describe_error(exc)}",
                     "restore it from another server's data directory, or remove it "
                     "(tokens signed by keys only it holds are then refused)")
    return Check(name, OK, f"{path}: {', '.join(k.kid for k in keys) or 'no keys'}")


def check_claim_settings(settings: Settings) -> Check:
    """``aud`` and ``iss``: what every token must carry here."""
    name = "audience/issuer"
    audience, issuer = settings.audience, settings.issuer
    detail = f"aud {audience!r}, iss " + (
        repr(issuer) if issuer is not None else "not set (not required)"
    )
    if not audience.strip():
        return Check(name, FAIL, f"{detail}: the audience is empty",
                     "set TASKGATE_AUDIENCE to this deployment's audience (default "
                     "urn:taskgate:task), the same on every node")
    if issuer is not None and not issuer.strip():
        return Check(name, FAIL, f"{detail}: the issuer is set but empty, so tokens carry "
                     "no iss and none is checked",
                     "unset TASKGATE_ISSUER, or set it to this deployment's issuer name")
    for setting, value in (("TASKGATE_AUDIENCE", audience), ("TASKGATE_ISSUER", issuer)):
        if value is not None and value != value.strip():
            return Check(name, FAIL, f"{detail}: {setting} has spaces around it",
                         f"remove them: {setting} must equal the claim exactly")
    return Check(name, OK, detail)


# --- database -------------------------------------------------------------------------


def _kind(url: str) -> str:
    backend = make_url(url).get_backend_name()
    return {"sqlite": "SQLite", "postgresql": "PostgreSQL"}.get(backend, backend)


def _missing_sqlite_file(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    path = Path(parsed.database)
    return None if path.exists() else path


def _upgrade_fix(settings: Settings) -> str:
    if settings.uses_embedded_database:
        return "run `taskgate db upgrade` (`taskgate serve` also migrates the embedded database)"
    return "run `taskgate db upgrade` (a server does not start before)"


async def check_database(settings: Settings) -> tuple[Check, AsyncEngine | None]:
    """One ``SELECT 1`` on the engine the server would make (``engine_from_settings``)."""
    name = "database"
    url = settings.effective_database_url
    where = f"{_kind(url)} at {masked_url(url)}"
    missing = _missing_sqlite_file(url)
    if missing is not None:
        return Check(name, FAIL, f"{where}: {missing} does not exist", _upgrade_fix(settings)
                     + " to create it, or correct TASKGATE_DATA_DIR / TASKGATE_DATABASE_URL"), None
    engine = engine_from_settings(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure to connect is this check's answer
        await engine.dispose()
        return Check(name, FAIL, f"{where} unreachable: {describe_error(exc, url)}",
                     "check that the database is up and reachable from this host, and "
                     "TASKGATE_DATABASE_URL (host, port, user, password, database name)"), None
    return Check(name, OK, where), engine


# The database's clock, as epoch seconds.
_DATABASE_NOW = {
    "sqlite": "SELECT (julianday('now') - 2440587.5) * 86400.0",
    "postgresql": "SELECT extract(epoch FROM clock_timestamp())",
}


async def check_clock(engine: AsyncEngine, leeway: int) -> Check:
    """This host's clock against the database's. Tokens carry times from the clock of
    the host that issued them, checked against the clock of the one that validates:
    hosts apart by more than the leeway refuse each other's fresh tokens."""
    name = "clock"
    query = _DATABASE_NOW.get(engine.dialect.name)
    if query is None:
        return Check(name, SKIP, f"no clock query for {engine.dialect.name}")
    async with engine.connect() as connection:
        before = time.time()
        database_now = float((await connection.execute(text(query))).scalar_one())
        after = time.time()
    skew = database_now - (before + after) / 2
    side = "ahead of" if skew >= 0 else "behind"
    detail = f"the database's clock is {abs(skew):.3f} s {side} this host's (leeway {leeway} s)"
    if abs(skew) > leeway:
        return Check(name, FAIL, detail,
                     "synchronise the clocks (NTP) of this host and the database's; or raise "
                     "TASKGATE_LEEWAY, which lets expired tokens live that much longer")
    return Check(name, OK, detail)


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(migrate.alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


async def check_schema(engine: AsyncEngine, settings: Settings) -> Check:
    """The revision against ``migrate.HEAD``, as ``Runtime.prepare_database`` compares them."""
    name = "schema"
    revision = await migrate.current_revision(engine)
    if revision == migrate.HEAD:
        return Check(name, OK, f"at head ({migrate.HEAD})")
    if revision is None:
        return Check(name, FAIL, f"never migrated (no alembic_version row; head is "
                     f"{migrate.HEAD})", _upgrade_fix(settings))
    if revision not in _known_revisions():
        return Check(name, FAIL, f"at {revision}, a revision this taskgate does not know "
                     f"(its head is {migrate.HEAD}): a newer taskgate migrated it",
                     "run the taskgate version that migrated it, or upgrade this one")
    return Check(name, FAIL, f"at {revision}, behind head {migrate.HEAD}", _upgrade_fix(settings))


async def _one_stored_secret(engine: AsyncEngine) -> tuple[str, str] | None:
    """Some value stored encrypted, and what it is ("variable 'k'"); None if none is."""
    async with engine.connect() as connection:
        row = (await connection.execute(
            select(Variable.key, Variable.value).where(Variable.value.is_not(None)).limit(1)
        )).first()
        if row is not None:
            return f"variable {row[0]!r}", row[1]
        row = (await connection.execute(
            select(Connection.conn_id, Connection.password, Connection.extra)
            .where(Connection.password.is_not(None) | Connection.extra.is_not(None))
            .limit(1)
        )).first()
    if row is None:
        return None
    field = "password" if row[1] is not None else "extra"
    return f"connection {row[0]!r} ({field})", row[1] if row[1] is not None else row[2]


async def check_secrets(engine: AsyncEngine | None, settings: Settings) -> Check:
    """The Fernet keys (``load_secret_box``) opening one stored secret; without the
    database (``engine`` None), only whether the keys can be used at all."""
    name = "fernet keys"
    source = ("TASKGATE_FERNET_KEYS" if settings.fernet_keys is not None
              else str(settings.fernet_key_file))
    configured = settings.fernet_keys is not None or settings.fernet_key_file.exists()
    box = None
    if configured:
        try:
            box = load_secret_box(settings)
        except (SecretKeyError, OSError) as exc:
            return Check(name, FAIL, f"{source}: {exc}",
                         "give valid Fernet keys (32 url-safe base64 bytes each; "
                         "TASKGATE_FERNET_KEYS comma-separated, or one per line in the file)")
    if engine is None:
        return Check(name, SKIP, f"keys from {source} are usable; trying them on a stored "
                     "secret needs the database and its schema at head" if configured else
                     f"{source} is created at first start; trying needs the database")
    sample = await _one_stored_secret(engine)
    if sample is None:
        state = f"keys from {source}" if configured else f"{source} is created at first start"
        return Check(name, OK, f"{state}; no stored secret to try them on")
    what, stored = sample
    restore = (f"put the key that encrypted it back in {source} (any position: the first "
               "encrypts, all decrypt); then `taskgate keys rotate-fernet` re-encrypts")
    if box is None:
        return Check(name, FAIL, f"{what} is stored encrypted, but no key is configured "
                     f"(no TASKGATE_FERNET_KEYS, no {settings.fernet_key_file})",
                     "restore the key file, or set TASKGATE_FERNET_KEYS to the keys that "
                     "encrypted it")
    try:
        box.open(stored)
    except SecretKeyError:
        return Check(name, FAIL, f"{what} does not decrypt with the keys from {source}", restore)
    return Check(name, OK, f"keys from {source} decrypt {what}")


# --- all of it ------------------------------------------------------------------------



async def diagnose(settings: Settings) -> list[Check]:
    """Every check, in order; those that need the database are skipped without it."""
    signing_check, signing = check_signing_key(settings)
    checks = [
        signing_check,
        check_jwks(settings, signing),
        check_accepted_keys(settings),
        check_claim_settings(settings),
    ]
    database, engine = await check_database(settings)
    checks.append(database)
    if engine is None:
        skipped = [Check(name, SKIP, "needs the database") for name in ("clock", "schema")]
        return checks + skipped + [await check_secrets(None, settings)]
    try:
        checks.append(await _guarded("clock", check_clock(engine, settings.leeway)))
        schema = await _guarded("schema", check_schema(engine, settings))
        checks.append(schema)
        at_head = engine if schema.status == OK else None
        checks.append(await _guarded("fernet keys", check_secrets(at_head, settings)))
    finally:
        await engine.dispose()
    return checks


async def _guarded(name: str, check: Awaitable[Check]) -> Check:
    """A database check's own result, or its failure when the database fails midway."""
    try:
        return await check
    except Exception as exc:  # noqa: BLE001 - reported as this check's failure
        return Check(name, FAIL, f"the database failed: {describe_error(exc)}",
                     "check the database (see the database check)")
