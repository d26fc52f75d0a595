"""What the control API answers, as small frozen dataclasses.

Each is built from the answer's JSON and keeps that JSON as ``raw``: the shapes are
``taskgate.services.views``, the same the CLI prints with ``--json``, so a caller (the
CLI in remote mode above all) can pass the answer on unchanged. Fields the server adds
later stay in ``raw`` until a field here names them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))


Raw = dict[str, Any]


def _raw() -> Any:
    return field(default_factory=dict, repr=False, compare=False)


@dataclass(frozen=True)
class Dag:
    dag_id: str
    team: str | None
    token_binding: str | None  # None: the server's default
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> Dag:
        return cls(data["dag_id"], data.get("team"), data.get("token_binding"), data)


@dataclass(frozen=True)
class TaskInstance:
    id: uuid.UUID
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str
    try_number: int
    max_tries: int
    hostname: str | None
    unixname: str | None
    pid: int | None
    queued_at: datetime | None
    start_date: datetime | None
    end_date: datetime | None
    last_heartbeat_at: datetime | None
    rendered_map_index: str | None
    # Only in the answer for one TI (``get_task_instance``):
    rendered_fields: dict[str, Any] | None = None
    tokens_not_before: float | None = None  # tokens issued before it are refused
    workload_tokens_spent: int | None = None
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> TaskInstance:
        return cls(
            id=_uuid(data["id"]),
            dag_id=data["dag_id"],
            run_id=data["run_id"],
            task_id=data["task_id"],
            map_index=data["map_index"],
            state=data["state"],
            try_number=data["try_number"],
            max_tries=data["max_tries"],
            hostname=data.get("hostname"),
            unixname=data.get("unixname"),
            pid=data.get("pid"),
            queued_at=_time(data.get("queued_at")),
            start_date=_time(data.get("start_date")),
            end_date=_time(data.get("end_date")),
            last_heartbeat_at=_time(data.get("last_heartbeat_at")),
            rendered_map_index=data.get("rendered_map_index"),
            rendered_fields=data.get("rendered_fields"),
            tokens_not_before=data.get("tokens_not_before"),
            workload_tokens_spent=data.get("workload_tokens_spent"),
            raw=data,
        )


@dataclass(frozen=True)
class RunTask:
    """A task instance as ``create_run`` made it."""

    id: uuid.UUID
    task_id: str
    map_index: int
    state: str


@dataclass(frozen=True)
class CreatedRun:
    dag_id: str
    run_id: str
    task_instances: tuple[RunTask, ...]
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> CreatedRun:
        tis = tuple(
            RunTask(_uuid(t["id"]), t["task_id"], t["map_index"], t["state"])
            for t in data["task_instances"]
        )
        return cls(data["dag_id"], data["run_id"], tis, data)


@dataclass(frozen=True)
class Queued:
    """A queued TI's workload: ``raw`` is what a worker is handed (``taskgate worker
    run``'s workload, or Airflow's ``ExecuteTask`` with ``format="airflow"``)."""

    token: str  # the single-use workload token that starts the TI
    ti_id: uuid.UUID
    ti: TaskInstance | None  # the TI as queued; None for an Airflow workload
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> Queued:
        airflow = data.get("type") == "ExecuteTask"
        ti = None if airflow else TaskInstance.from_json(data["ti"])
        return cls(data["token"], _uuid(data["ti"]["id"]), ti, data)


@dataclass(frozen=True)
class TokensRevoked:
    ti_id: uuid.UUID
    tokens_not_before: float
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> TokensRevoked:
        return cls(_uuid(data["ti_id"]), data["tokens_not_before"], data)


@dataclass(frozen=True)
class Variable:
    key: str
    value: str | None  # None for an operator that is not an admin: values are secrets
    description: str | None
    team: str | None
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> Variable:
        return cls(data["key"], data.get("value"), data.get("description"), data.get("team"), data)


@dataclass(frozen=True)
class Connection:
    conn_id: str
    conn_type: str
    host: str | None
    schema: str | None
    login: str | None
    password: str | None  # "***" (set, hidden) for an operator that is not an admin
    port: int | None
    extra: str | None  # "***" as the password
    team: str | None
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> Connection:
        return cls(
            data["conn_id"], data["conn_type"], data.get("host"), data.get("schema"),
            data.get("login"), data.get("password"), data.get("port"), data.get("extra"),
            data.get("team"), data,
        )


@dataclass(frozen=True)
class XCom:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    value: Any
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> XCom:
        return cls(
            data["dag_id"], data["run_id"], data["task_id"], data["map_index"], data["key"],
            data["value"], data,
        )


@dataclass(frozen=True)
class OperatorInfo:
    name: str
    role: str
    teams: tuple[str, ...]  # empty: every team
    created_at: datetime | None
    revoked_at: datetime | None
    key: str | None = None  # only in the answer of ``add_operator``: the one time it is shown
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> OperatorInfo:
        return cls(
            data["name"], data["role"], tuple(data.get("teams") or ()),
            _time(data.get("created_at")), _time(data.get("revoked_at")), data.get("key"), data,
        )


@dataclass(frozen=True)
class Event:
    """One event of the feed: ``kind`` is ``ti.state``, ``ti.revoked`` or
    ``operator.action``; ``data`` holds its details (``at``, ``actor``, the TI's identity,
    ``from``/``to``, ...). ``raw`` is ``{"id", "event", "data"}``."""

    id: int
    kind: str
    data: dict[str, Any]
    raw: Raw = _raw()

    @classmethod
    def from_json(cls, data: Raw) -> Event:
        return cls(int(data["id"]), data["event"], data["data"], data)
