"""Settings, read from ``TASKGATE_*`` environment variables and an optional TOML file.

Every setting has a default, so ``taskgate serve`` starts with none set. The TOML file is
named by ``TASKGATE_CONFIG_FILE``; its keys are the field names below (``data_dir = "..."``).
Environment variables win over the file. ``docs/configuration.md`` lists every setting.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

CONFIG_FILE_ENV = "TASKGATE_CONFIG_FILE"
# Asymmetric JWS algorithms an OIDC token on the control API may use.
OIDC_ALGORITHMS = (
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TASKGATE_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        Path(".taskgate"),
        description="Directory for the embedded SQLite database and the generated signing key.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy async URL. Default: sqlite+aiosqlite:///<data_dir>/taskgate.db",
    )
    log_format: Literal["json", "console"] = Field(
        "json", description="Server log lines: JSON objects, or readable console lines."
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level of taskgate's own log events."
    )
    max_request_body_bytes: int = Field(
        2 * 1024 * 1024, ge=1024, description="Larger request bodies are refused with 413."
    )
    db_pool_size: int = Field(
        10, ge=1, description="Connections kept open per process (PostgreSQL)."
    )
    db_max_overflow: int = Field(
        10, ge=0, description="Extra connections a process may open under load (PostgreSQL)."
    )
    db_overflow_idle_seconds: float = Field(
        30.0, ge=0, description="Seconds an extra (overflow) connection may stay idle before "
        "it is closed (PostgreSQL; 0: closed as soon as it is returned).",
    )
    db_pool_timeout: float = Field(
        2.0, gt=0, description="Seconds a request waits for a free connection before 503."
    )
    db_connect_timeout: float = Field(
        2.0, gt=0, description="Seconds to establish a database connection before 503."
    )
    db_statement_timeout: float = Field(
        10.0, gt=0, description="Seconds a single SQL statement may run (PostgreSQL)."
    )
    db_request_deadline: float = Field(
        1.5,
        gt=0,
        description="Seconds one API request's database work may take in all (waiting for "
        "a pooled connection, connecting, the liveness check, its statements). Past it the "
        "request is answered 503 database_timeout at once; a commit in flight is waited "
        "for, never cut off.",
    )
    max_requests_in_flight: int | None = Field(
        None,
        ge=1,
        description="Execution API requests one process serves at a time; more are answered "
        "503 overloaded at once. Heartbeats, state reports and /run may use as many again "
        "on top, so a task's liveness survives a storm of reads. Default: 8 per database "
        "connection (pool size + overflow), at least 64.",
    )
    db_fast_paths: bool = Field(
        True,
        description="Send the hot statements straight to the driver, SQLite on the event "
        "loop's thread, a first-come-first-served pool. false: every statement takes "
        "SQLAlchemy's and aiosqlite's public paths (slower; for a library release that "
        "breaks a fast path).",
    )
    event_loop: Literal["asyncio", "uvloop"] = Field(
        "asyncio",
        description="The server's event loop. asyncio takes every waiting connection at "
        "each turn; uvloop answers the lightest routes a little faster but takes one new "
        "connection per turn, so under load a new connection (a worker's heartbeat) waits "
        "behind every other one queued.",
    )
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate (chain) for `taskgate serve` to serve HTTPS with, "
        "together with tls_key_file (`--tls-cert`). Unset: plain HTTP.",
    )
    tls_key_file: Path | None = Field(
        None,
        description="The unencrypted PEM private key of tls_cert_file (`--tls-key`).",
    )
    graceful_shutdown_seconds: int = Field(
        20,
        ge=1,
        description="On SIGTERM/SIGINT, how long `taskgate serve` waits for requests in "
        "flight to finish before cancelling them (`--timeout-graceful-shutdown`).",
    )
    event_retention_days: float = Field(
        7.0,
        gt=0,
        description="How long the control API's event feed keeps events; a follower resuming "
        "from an older one is answered 410 events_expired.",
    )
    event_poll_interval: float = Field(
        0.2,
        gt=0,
        le=1.0,
        description="How often a server looks for new events while anyone follows the feed: "
        "the most a change written on another replica waits before its followers get it.",
    )
    event_purge_interval: float = Field(
        600.0,
        gt=0,
        description="How often a server deletes what has outlived its use (seconds): events "
        "and read-audit records older than their retention, DPoP proof records past their "
        "window, operator page sessions past their end, refusal records past theirs.",
    )
    read_audit: bool = Field(
        True,
        description="Record every read of a variable or connection by a task, allowed or "
        "refused (never the value); a read that cannot be recorded fails with 503.",
    )
    read_audit_retention_days: float = Field(
        90.0,
        gt=0,
        description="How long read-audit records are kept.",
    )
    otel_enabled: bool = Field(
        False,
        description="Continue callers' OpenTelemetry traces (W3C traceparent): a server span "
        "per request, trace_id/span_id in the logs. Needs `pip install 'taskgate[otel]'`.",
    )
    signing_key_file: Path | None = Field(
        None,
        description="PEM private key (Ed25519 or RSA) used to sign tokens. "
        "Default: <data_dir>/signing-key.pem, created on first start.",
    )
    jwks_url: str | None = Field(
        None,
        description="JWKS document (file path or http(s) URL) with public keys accepted for "
        "validation, in addition to the signing key. Alone, it makes a validation-only node.",
    )
    jwt_secret: SecretStr | None = Field(
        None, description="Shared secret: sign and validate with HS512 instead of a key pair."
    )
    fernet_keys: SecretStr | None = Field(
        None,
        description="Comma-separated Fernet keys for secrets at rest (first encrypts). "
        "Default: the key file <data_dir>/fernet.key, created on first start.",
    )
    key_reload_seconds: float = Field(
        5.0,
        ge=0,
        description="How often a server re-reads its key files and JWKS (0: only at start).",
    )
    audience: str = Field("urn:taskgate:task", description="Required `aud` claim.")
    issuer: str | None = Field(None, description="`iss` claim; when set it is also required.")
    execution_token_ttl: int = Field(600, gt=0, description="Execution token lifetime (s).")
    workload_token_ttl: int = Field(3600, gt=0, description="Workload token lifetime (s).")
    leeway: int = Field(10, ge=0, description="Clock leeway when checking exp/nbf/iat (s).")
    token_binding: Literal["bearer", "dpop"] = Field(
        "bearer",
        description="For DAGs registered without a token binding: dpop makes /run refuse a "
        "workload token without a DPoP proof, so every execution token of their tasks is "
        "bound to a key; bearer also issues unbound tokens.",
    )
    dpop_proof_window: float = Field(
        60.0, gt=0, le=600,
        description="How old (seconds) a DPoP proof's iat may be; a proof is accepted once "
        "within it. Proofs dated ahead of this server's clock get TASKGATE_LEEWAY.",
    )
    dpop_require_nonce: bool = Field(
        False,
        description="DPoP proofs must carry a nonce this server (or a replica sharing its "
        "Fernet keys) handed out in DPoP-Nonce within the last two minutes.",
    )
    public_url: str | None = Field(
        None,
        description="The scheme, host and port clients use to reach this server "
        "(https://taskgate.example.com), when a proxy in between changes them. A DPoP "
        "proof names the URL its client called; unset: the URL as this server received it.",
    )
    token_standing_cache_seconds: float = Field(
        1.0,
        ge=0,
        le=1.0,
        description="How long a TI's token standing (revocation watermark, ended, its DAG's "
        "declared access) may be cached per process; at most 1 s, 0 disables the cache.",
    )
    require_declared_access: bool = Field(
        False,
        description="A DAG without declared access (`taskgate dags add DAG --allow-...`) "
        "reads no variable, no connection and no other DAG's XComs.",
    )

    refusal_retention_hours: float = Field(
        24.0,
        gt=0,
        description="How long the records of refused requests (the operator page's "
        "refusals, GET /control/v1/refusals) are kept (hours).",
    )
    ui_session_ttl: float = Field(
        28800.0,
        gt=0,
        le=7 * 24 * 3600,
        description="How long an operator page session lasts after sign-in (seconds); one "
        "made from an OIDC token ends no later than the token. Signing out ends it at once.",
    )
    # The control API's OIDC sign-in (security/oidc.py, docs/control.md "OIDC"): all
    # three of issuer, audience and JWKS URL, or none of them.
    control_oidc_issuer: str | None = Field(
        None,
        description="Identity provider whose JWTs the control API accepts besides operator "
        "keys; its `iss` claim must equal this exactly. Unset: operator keys only.",
    )
    control_oidc_audience: str | None = Field(
        None, description="Required `aud` claim of OIDC tokens on the control API."
    )
    control_oidc_jwks_url: str | None = Field(
        None,
        description="http(s) URL of the identity provider's JWKS: the keys OIDC tokens are "
        "checked with (cached 5 min, fetched again early for an unknown `kid`).",
    )
    control_oidc_role_claim: str = Field(
        "taskgate_role",
        min_length=1,
        description="Claim holding the operator role (reader, operator or admin; a list "
        "counts for its highest role).",
    )
    control_oidc_teams_claim: str = Field(
        "taskgate_teams",
        min_length=1,
        description="Claim holding the operator's teams: a list of strings or one string "
        "separated by spaces or commas. Absent or empty: every team, as a key without teams.",
    )
    control_oidc_name_claim: str = Field(
        "sub",
        min_length=1,
        description="Claim naming the operator; the principal is `oidc:<value>`.",
    )
    control_oidc_algorithms: str = Field(
        "RS256,ES256",
        description="Comma-separated JWS algorithms accepted on OIDC tokens; `none` and "
        "HS* are refused.",
    )

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query \
                or parts.fragment:
            raise ValueError(
                "public_url: give the scheme, host and port clients call, such as "
                "https://taskgate.example.com (a path prefix is allowed; no query)"
            )
        return value.rstrip("/")

    @field_validator("control_oidc_algorithms")
    @classmethod
    def _oidc_algorithms(cls, value: str) -> str:
        names = [name.strip() for name in value.split(",") if name.strip()]
        refused = [name for name in names if name not in OIDC_ALGORITHMS]
        if refused or not names:
            raise ValueError(
                f"control_oidc_algorithms: {', '.join(refused) or 'none given'} not accepted; "
                f"choose from {', '.join(OIDC_ALGORITHMS)} (never none or HS*: a shared "
                "secret cannot come from a public JWKS)"
            )
        return ",".join(names)

    @model_validator(mode="after")
    def _oidc_complete(self) -> Settings:
        parts = {
            "TASKGATE_CONTROL_OIDC_ISSUER": self.control_oidc_issuer,
            "TASKGATE_CONTROL_OIDC_AUDIENCE": self.control_oidc_audience,
            "TASKGATE_CONTROL_OIDC_JWKS_URL": self.control_oidc_jwks_url,
        }
        missing = [name for name, value in parts.items() if not value]
        if missing and len(missing) < len(parts):
            raise ValueError(
                f"control API OIDC is half configured: {', '.join(missing)} not set "
                "(set the issuer, the audience and the JWKS URL together, or none of them)"
            )
        url = self.control_oidc_jwks_url
        if url and not url.startswith(("https://", "http://")):
            raise ValueError(f"TASKGATE_CONTROL_OIDC_JWKS_URL must be an http(s) URL, not {url!r}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if config_file := os.environ.get(CONFIG_FILE_ENV):
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @cached_property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'taskgate.db').resolve()}"

    @cached_property
    def effective_signing_key_file(self) -> Path:
        return self.signing_key_file or self.data_dir / "signing-key.pem"

    @cached_property
    def accepted_keys_file(self) -> Path:
        """Public keys accepted besides the signing key (kept by ``taskgate keys rotate``)."""
        return self.data_dir / "accepted-keys.jwks.json"

    @cached_property
    def fernet_key_file(self) -> Path:
        return self.data_dir / "fernet.key"

    @cached_property
    def effective_max_requests_in_flight(self) -> int:
        if self.max_requests_in_flight is not None:
            return self.max_requests_in_flight
        sqlite = self.effective_database_url.startswith("sqlite")  # one connection per process
        connections = 1 if sqlite else self.db_pool_size + self.db_max_overflow
        return max(64, 8 * connections)

    @property
    def control_oidc_enabled(self) -> bool:
        return bool(self.control_oidc_issuer)

    @property
    def uses_embedded_database(self) -> bool:
        return self.database_url is None
