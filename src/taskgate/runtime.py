"""Wiring: from ``Settings`` to the objects the server and the CLI share.

Both ``taskgate serve`` and every CLI command build one ``Runtime``, so they use the same
database, the same keys and the same token lifetimes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from taskgate import logs
from taskgate.db import migrate
from taskgate.db.availability import FaultMemory
from taskgate.db.group_commit import GroupCommit
from taskgate.db.session import EngineOptions, create_engine, create_sessionmaker
from taskgate.services import (
    dpop_replay,
    events,
    operator_sessions,
    read_audit,
    refusal_log,
    replicas,
)
from taskgate.services.event_feed import EventFeed
from taskgate.services.lifecycle import Lifecycle
from taskgate.services.read_audit import ReadAudit
from taskgate.services.refusal_log import RefusalLog
from taskgate.services.replicas import ThisReplica
from taskgate.services.secrets import SecretBox, create_key_file, read_key_file
from taskgate.services.token_standing import StandingLookup
from taskgate.settings import Settings
from taskgate.tokens import CachedTokenValidator, TokenIssuer, TokenValidator
from taskgate.tokens import keys as keylib
from taskgate.tokens.nonces import Nonces

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

log = logs.get_logger("taskgate.runtime")


@dataclass(frozen=True)
class KeyMaterial:
    signing: keylib.SigningKey | None  # None on a validation-only node
    verification: list[keylib.VerificationKey]
    created_key_file: Path | None = None  # set when this start generated the signing key


def load_key_material(settings: Settings, *, create: bool = True) -> KeyMaterial:
    """Signing key and validation keys, per the rules in docs/configuration.md.

    - ``TASKGATE_JWT_SECRET`` set: HS512 with that secret.
    - else the PEM at the signing key file, generated (Ed25519) when missing, unless a JWKS
      is configured and no key file exists: then this node only validates.
    - keys from ``TASKGATE_JWKS_URL`` and from the accepted-keys file (written by
      ``taskgate keys rotate``) are accepted for validation in every case.
    """
    extra = keylib.load_jwks(settings.jwks_url) if settings.jwks_url else []
    if settings.accepted_keys_file.exists():
        extra += keylib.load_jwks(str(settings.accepted_keys_file))
    created: Path | None = None
    signing: keylib.SigningKey | None
    if settings.jwt_secret is not None:
        signing = keylib.signing_key_from_secret(settings.jwt_secret.get_secret_value())
    else:
        path = settings.effective_signing_key_file
        if path.exists():
            signing = keylib.load_signing_key(path)
        elif settings.jwks_url or not create:
            signing = None
        else:
            keylib.write_private_key(path, keylib.generate_private_key(keylib.KeyType.ED25519))
            signing, created = keylib.load_signing_key(path), path
    verification = [signing.verification] if signing else []
    for key in extra:
        if all(key.kid != known.kid for known in verification):
            verification.append(key)
    if not verification:
        raise keylib.KeyFileError(
            f"no keys: {settings.effective_signing_key_file} does not exist and no JWKS is set"
        )
    return KeyMaterial(signing, verification, created)


def load_secret_box(settings: Settings) -> SecretBox:
    """From ``TASKGATE_FERNET_KEYS``, else the key file (created on first use)."""
    if settings.fernet_keys is not None:
        return SecretBox(settings.fernet_keys.get_secret_value().split(","))
    path = settings.fernet_key_file
    return SecretBox(read_key_file(path) if path.exists() else create_key_file(path))


def token_services(
    settings: Settings, material: KeyMaterial
) -> tuple[CachedTokenValidator, TokenIssuer | None]:
    """The validator and issuer a server builds from ``settings`` and its keys (also
    ``taskgate doctor``'s, so it judges tokens exactly as the server does)."""
    issuer = None
    if material.signing is not None:
        issuer = TokenIssuer(
            material.signing,
            audience=settings.audience,
            issuer=settings.issuer,
            execution_ttl=settings.execution_token_ttl,
            workload_ttl=settings.workload_token_ttl,
        )
    validator = TokenValidator(
        material.verification,
        audience=settings.audience,
        issuer=settings.issuer,
        leeway=settings.leeway,
    )
    return CachedTokenValidator(validator), issuer


def engine_from_settings(settings: Settings) -> AsyncEngine:
    """The database engine ``settings`` describe: URL, pool, timeouts, fast paths."""
    return create_engine(
        settings.effective_database_url,
        EngineOptions(
            size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            overflow_idle_seconds=settings.db_overflow_idle_seconds,
            timeout=settings.db_pool_timeout,
            connect_timeout=settings.db_connect_timeout,
            statement_timeout=settings.db_statement_timeout,
            fast_paths=settings.db_fast_paths,
        ),
    )


def _fingerprint(material: KeyMaterial) -> tuple[str | None, tuple[str, ...]]:
    signing = material.signing.kid if material.signing else None
    return signing, tuple(sorted(k.kid for k in material.verification))


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    validator: CachedTokenValidator
    issuer: TokenIssuer | None
    standing: StandingLookup
    secrets: SecretBox = field(repr=False)
    keys: KeyMaterial = field(repr=False)
    # The heartbeat's writes: on PostgreSQL those of one event-loop turn go together
    # (db/group_commit.py).
    writes: GroupCommit = field(init=False, repr=False)
    # Every step that changes a TI (services/lifecycle.py).
    lifecycle: Lifecycle = field(init=False, repr=False)
    # The last database fault requests met (for /execution/health).
    faults: FaultMemory = field(init=False, repr=False, default_factory=FaultMemory)
    # The followers' side of the event feed (services/event_feed.py).
    events: EventFeed = field(init=False, repr=False)
    # Every task's read of a variable or connection, recorded (services/read_audit.py);
    # the records of concurrent reads share transactions.
    read_audit: ReadAudit = field(init=False, repr=False)
    # Every request the security layers refuse, recorded in the background
    # (services/refusal_log.py).
    refusals: RefusalLog = field(init=False, repr=False)
    # This process among the replicas on its database (services/replicas.py).
    replica: ThisReplica = field(init=False, repr=False, default_factory=ThisReplica)
    # The DPoP nonces proofs must carry, when TASKGATE_DPOP_REQUIRE_NONCE (tokens/nonces.py).
    nonces: Nonces | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        self.writes = GroupCommit(self.engine)
        self.lifecycle = Lifecycle(
            self.sessionmaker,
            self.writes,
            self.standing,
            lambda: self.issuer,
            leeway=self.settings.leeway,
            token_binding=self.settings.token_binding,
        )
        self.events = EventFeed(self.sessionmaker, poll_interval=self.settings.event_poll_interval)
        self.read_audit = ReadAudit(self.engine, enabled=self.settings.read_audit)
        self.refusals = RefusalLog(self.engine)
        if self.settings.dpop_require_nonce:
            self.nonces = Nonces(self.secrets.keys)

    @staticmethod
    def of(connection: HTTPConnection) -> Runtime:
        """The runtime the application serving this request was made with
        (``taskgate.api.app.create_app``)."""
        runtime: Runtime | None = connection.app.state.runtime
        if runtime is None:
            raise RuntimeError("create_app() without a runtime cannot serve requests")
        return runtime

    @classmethod
    def from_settings(cls, settings: Settings, *, create_key: bool = True) -> Runtime:
        material = load_key_material(settings, create=create_key)
        validator, issuer = token_services(settings, material)
        engine = engine_from_settings(settings)
        sessionmaker = create_sessionmaker(engine)
        standing = StandingLookup(engine, ttl=settings.token_standing_cache_seconds)
        secrets = load_secret_box(settings)
        return cls(settings, engine, sessionmaker, validator, issuer, standing, secrets, material)

    def reload_keys(self) -> bool:
        """Re-read the key files (and JWKS URL); swap in new keys if they changed.

        Requests read ``validator`` and ``issuer`` afresh each time, so a swap takes effect
        on the next request, without a restart.
        """
        material = load_key_material(self.settings, create=False)
        if _fingerprint(material) == _fingerprint(self.keys):
            return False
        self.validator, self.issuer = token_services(self.settings, material)
        self.keys = material
        log.info("keys reloaded", signing_kid=material.signing and material.signing.kid,
                 accepted=[k.kid for k in material.verification])
        return True

    async def watch_keys(self) -> None:
        """Reload keys every ``key_reload_seconds`` until cancelled."""
        interval = self.settings.key_reload_seconds
        while interval > 0:
            await asyncio.sleep(interval)
            try:
                await asyncio.to_thread(self.reload_keys)
            except Exception as exc:  # noqa: BLE001 - keep serving with the keys we have
                log.error("key reload failed; keeping the current keys", error=str(exc))

    def _purges(self) -> dict[str, Callable[[AsyncSession], Awaitable[int]]]:
        """What outlives its use, by name, and how each one's old rows are deleted."""
        settings = self.settings
        return {
            "events": lambda session: events.purge(
                session, timedelta(days=settings.event_retention_days)),
            "read_audit": lambda session: read_audit.purge(
                session, timedelta(days=settings.read_audit_retention_days)),
            "dpop_proof_uses": dpop_replay.purge,  # too old to be accepted again
            "operator_sessions": operator_sessions.purge,  # past their end
            "refusals": lambda session: refusal_log.purge(
                session, timedelta(hours=settings.refusal_retention_hours)),
            "replicas": replicas.purge,  # silent for a day
        }

    async def purge(self, what: str) -> int:
        """Delete the rows of ``what`` (``events``, ``read_audit``, ``dpop_proof_uses``,
        ``operator_sessions``, ``refusals``, ``replicas``) past their retention; how many."""
        async with self.sessionmaker() as session:
            return await self._purges()[what](session)

    async def announce(self) -> None:
        """Record that this replica is alive (``services.replicas``); a failure is logged
        (the next announcement may succeed)."""
        try:
            async with self.sessionmaker() as session:
                await replicas.announce(session, self.replica)
        except Exception as exc:  # noqa: BLE001 - serving goes on without it
            log.warning("announcing this replica failed", error=str(exc))

    async def announce_periodically(self) -> None:
        """``announce`` every ``replicas.ANNOUNCE_SECONDS`` until cancelled."""
        while True:
            await asyncio.sleep(replicas.ANNOUNCE_SECONDS)
            await self.announce()

    async def purge_periodically(self) -> None:
        """``purge`` everything every ``event_purge_interval`` until cancelled."""
        while True:
            await asyncio.sleep(self.settings.event_purge_interval)
            for what in self._purges():
                try:
                    purged = await self.purge(what)
                except Exception as exc:  # noqa: BLE001 - try again next time
                    log.warning(f"purging old {what} failed", error=str(exc))
                    continue
                if purged:
                    log.info(f"old {what} purged", count=purged)

    def require_issuer(self) -> TokenIssuer:
        if self.issuer is None:
            raise RuntimeError("this node has no signing key: it can only validate tokens")
        return self.issuer

    async def prepare_database(self) -> None:
        """Migrate the embedded SQLite database; check that any other one is migrated."""
        if self.settings.uses_embedded_database:
            await migrate.upgrade(self.engine)
            return
        if await migrate.current_revision(self.engine) != migrate.HEAD:
            raise RuntimeError(
                "the database schema is not up to date: run `taskgate db upgrade` first"
            )

    async def aclose(self) -> None:
        await self.writes.aclose()
        await self.read_audit.aclose()
        await self.refusals.aclose()
        await self.engine.dispose()
