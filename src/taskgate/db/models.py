"""The tables. Every timestamp is stored and returned as an aware UTC datetime."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID_LENGTH = 250  # dag_id, run_id, task_id, keys: Airflow's limit


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """SQLite forgets time zones; this type stores UTC and always hands back aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Dag(Base):
    __tablename__ = "dags"

    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    team: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # What its tasks may read (services.declared_access), JSON; None: not declared.
    access: Mapped[str | None] = mapped_column(Text)
    # "dpop": /run issues its tasks only key-bound tokens; "bearer": either kind; None:
    # the server's TASKGATE_TOKEN_BINDING.
    token_binding: Mapped[str | None] = mapped_column(String(10))


class DagRun(Base):
    __tablename__ = "dag_runs"
    __table_args__ = (UniqueConstraint("dag_id", "run_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(ForeignKey("dags.dag_id", ondelete="CASCADE"))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_type: Mapped[str] = mapped_column(String(50), default="manual")
    state: Mapped[str] = mapped_column(String(50), default="running")
    logical_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data_interval_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    data_interval_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    clear_number: Mapped[int] = mapped_column(Integer, default=0)
    conf: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskInstance(Base):
    __tablename__ = "task_instances"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", "task_id", "map_index"),
        ForeignKeyConstraint(
            ["dag_id", "run_id"], ["dag_runs.dag_id", "dag_runs.run_id"], ondelete="CASCADE"
        ),
        Index(None, "state"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    try_number: Mapped[int] = mapped_column(Integer, default=0)
    max_tries: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(50), default="scheduled")
    hostname: Mapped[str | None] = mapped_column(String(1000))
    unixname: Mapped[str | None] = mapped_column(String(1000))
    pid: Mapped[int | None] = mapped_column(Integer)
    queued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    start_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rendered_map_index: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    next_method: Mapped[str | None] = mapped_column(String(1000))
    next_kwargs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Tokens of this TI issued before this instant (epoch seconds) are refused: set by a
    # revoke and by queuing a new try.
    tokens_not_before: Mapped[float | None] = mapped_column(Float)
    # When the newest execution token issued for this TI expires (epoch seconds): set at
    # the /run exchange and at each re-issue, for the operator to see.
    token_expires_at: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class UsedWorkloadToken(Base):
    """The ``jti`` of every workload token that started a TI: a workload token starts a TI
    once. Rows outlive the token's expiry only until the next purge."""

    __tablename__ = "used_workload_tokens"

    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    ti_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    expires_at: Mapped[float] = mapped_column(Float, index=True)


class TaskReschedule(Base):
    """One ``up_for_reschedule`` report of a TI: sensors in reschedule mode read the first
    one's ``start_date`` back, and ``/run`` counts them for the current try."""

    __tablename__ = "task_reschedules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ti_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task_instances.id", ondelete="CASCADE"), index=True
    )
    try_number: Mapped[int] = mapped_column(Integer)
    start_date: Mapped[datetime] = mapped_column(UTCDateTime)
    end_date: Mapped[datetime] = mapped_column(UTCDateTime)
    reschedule_date: Mapped[datetime] = mapped_column(UTCDateTime)


class TaskStateEntry(Base):
    """A key of a TI's task state store: JSON a task keeps across its tries and resumptions."""

    __tablename__ = "task_state_store"

    ti_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task_instances.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(512), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # the JSON document, verbatim
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class RenderedTaskInstanceFields(Base):
    __tablename__ = "rendered_task_instance_fields"

    ti_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("task_instances.id", ondelete="CASCADE"), primary_key=True
    )
    rendered_fields: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class XCom(Base):
    __tablename__ = "xcoms"
    __table_args__ = (
        UniqueConstraint("dag_id", "run_id", "task_id", "key", "map_index"),
        ForeignKeyConstraint(
            ["dag_id", "run_id"], ["dag_runs.dag_id", "dag_runs.run_id"], ondelete="CASCADE"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    run_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer, default=-1)
    key: Mapped[str] = mapped_column(String(512))
    value: Mapped[str] = mapped_column(Text)  # the JSON document, verbatim
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Variable(Base):
    __tablename__ = "variables"

    key: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Connection(Base):
    __tablename__ = "connections"

    conn_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    conn_type: Mapped[str] = mapped_column(String(500))
    host: Mapped[str | None] = mapped_column(String(500))
    schema: Mapped[str | None] = mapped_column(String(500))
    login: Mapped[str | None] = mapped_column(Text)
    password: Mapped[str | None] = mapped_column(Text)
    port: Mapped[int | None] = mapped_column(Integer)
    extra: Mapped[str | None] = mapped_column(Text)
    team: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Operator(Base):
    """A person or program that drives taskgate over the control API, and the hash of
    its key (the key itself is shown once, when it is made)."""

    __tablename__ = "operators"

    name: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    role: Mapped[str] = mapped_column(String(20))
    teams: Mapped[list[str]] = mapped_column(JSON)  # empty: every team
    key_id: Mapped[str] = mapped_column(String(32), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))  # SHA-256 of the key's secret, hex
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# A 64-bit id that autoincrements everywhere (events, read-audit records): SQLite gives an
# autoincrementing id only to an INTEGER PRIMARY KEY.
AutoincrementId = BigInteger().with_variant(Integer(), "sqlite")


class Event(Base):
    """One change, written in the transaction that made it: a TI's state, a revocation of
    its tokens, an operator's action. An event readable later has a higher id than every
    event readable now (``services.events``)."""

    __tablename__ = "events"
    # AUTOINCREMENT on SQLite: an id is never handed out twice, even after a purge.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(AutoincrementId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(ID_LENGTH))
    dag_id: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    # The team of what changed (the DAG's, or the variable's or connection's), when it was
    # written: what an operator with teams may see.
    team: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    data: Mapped[str] = mapped_column(Text)  # the JSON object, verbatim


class EventHorizon(Base):
    """One row: the id up to which events were purged; a follower behind it has missed
    some (410)."""

    __tablename__ = "event_horizon"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    purged_through: Mapped[int] = mapped_column(AutoincrementId)


class ReadAudit(Base):
    """One read of a variable or connection by a task, allowed or refused
    (``services.read_audit``): who read what, when, from where. Never the value."""

    __tablename__ = "read_audit"
    __table_args__ = (Index(None, "ti_id"), Index(None, "dag_id", "at"), Index(None, "key"))

    id: Mapped[int] = mapped_column(AutoincrementId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ti_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    dag_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    task_id: Mapped[str] = mapped_column(String(ID_LENGTH))
    map_index: Mapped[int] = mapped_column(Integer)
    try_number: Mapped[int] = mapped_column(Integer)
    team: Mapped[str | None] = mapped_column(String(ID_LENGTH))  # the DAG's, when read
    kind: Mapped[str] = mapped_column(String(20))  # variable, connection
    key: Mapped[str] = mapped_column(String(ID_LENGTH))
    outcome: Mapped[str] = mapped_column(String(20))  # allowed, refused, not_found
    reason: Mapped[str | None] = mapped_column(String(50))  # a refusal's rule
    hostname: Mapped[str | None] = mapped_column(String(1000))


class DPoPProofUse(Base):
    """A DPoP proof already used (``services.dpop_replay``): a proof is accepted once. The
    key is a hash of the proof key's thumbprint and the proof's ``jti``, never either one;
    a row outlives ``expires_at`` (after which the proof is too old anyway) only until the
    next purge. Each request writes one, so the row enters one B-tree only: its primary
    key (no index on ``expires_at``, which the purge scans for; on SQLite no rowid)."""

    __tablename__ = "dpop_proof_uses"
    __table_args__ = {"sqlite_with_rowid": False}

    proof_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex SHA-256
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class OperatorSession(Base):
    """A browser session of an operator (the operator page, ``services.operator_sessions``):
    made from an operator key or an OIDC token, held by the browser as a cookie. The row
    keeps the SHA-256 of the cookie's secret, never the secret; ``csrf_token`` is what
    every state-changing request of the session must repeat in a header."""

    __tablename__ = "operator_sessions"

    session_id: Mapped[str] = mapped_column(String(64), primary_key=True)  # hex SHA-256
    # A key's session names its operator (role, teams and revocation read on each
    # request); an OIDC token's keeps what the token said, for at most its lifetime.
    operator: Mapped[str | None] = mapped_column(String(ID_LENGTH))
    name: Mapped[str] = mapped_column(String(ID_LENGTH))
    role: Mapped[str] = mapped_column(String(20))
    teams: Mapped[list[str]] = mapped_column(JSON)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class RefusalRecord(Base):
    """One request the Execution API's security layers refused (``services.refusal_log``):
    when, which route, why, and the TI its token named if a token was read; never the
    token. What the operator page charts and lists."""

    __tablename__ = "refusals"

    id: Mapped[int] = mapped_column(AutoincrementId, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    method: Mapped[str] = mapped_column(String(10))
    route: Mapped[str] = mapped_column(String(ID_LENGTH))  # the template, not the path
    status: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(String(50))
    ti_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)


class Replica(Base):
    """A ``taskgate serve`` process on this database, as it last announced itself
    (``services.replicas``): the operator page's count of replicas seen."""

    __tablename__ = "replicas"

    replica_id: Mapped[str] = mapped_column(String(32), primary_key=True)  # per process start
    hostname: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    version: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
