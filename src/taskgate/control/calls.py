"""Every control API operation as a method, shared by ``ControlClient`` and
``AsyncControlClient``.

Each method builds a ``Call`` (``taskgate.client.exchange``: the request, how to parse the
answer, whether it may be repeated) and hands it to ``self._call``: the sync client
returns the result, the async one a coroutine of it.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from taskgate.client.exchange import Call
from taskgate.control.models import (
    Connection,
    CreatedRun,
    Dag,
    Event,
    OperatorInfo,
    Queued,
    TaskInstance,
    TokensRevoked,
    Variable,
    XCom,
)

T = TypeVar("T")

WorkloadFormat = Literal["taskgate", "airflow"]
Role = Literal["reader", "operator", "admin"]


def _one(kind: Callable[[dict[str, Any]], T]) -> Callable[[httpx.Response], T]:
    return lambda response: kind(response.json())


def _many(kind: Callable[[dict[str, Any]], T]) -> Callable[[httpx.Response], list[T]]:
    return lambda response: [kind(item) for item in response.json()]


def _json(response: httpx.Response) -> Any:
    return response.json()


def _nothing(response: httpx.Response) -> None:
    return None


def _seg(value: str) -> str:
    return quote(value, safe="")


def _ti(ti_id: uuid.UUID | str, rest: str = "") -> str:
    path = f"/task-instances/{uuid.UUID(str(ti_id))}"
    return f"{path}/{rest}" if rest else path


def _query(**params: Any) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


class ControlCalls(ABC):
    @abstractmethod
    def _call(self, call: Call[Any]) -> Any:
        """Send one call: the sync client returns its answer, the async one an awaitable."""

    # DAGs and runs ---------------------------------------------------------------------

    def add_dag(
        self, dag_id: str, team: str | None = None, token_binding: str | None = None
    ) -> Dag:
        """Register a DAG with its team (admin). Again with the same team is fine; another
        team is ``Conflict`` (``team_mismatch``). ``token_binding`` (``dpop``/``bearer``)
        replaces the DAG's when given."""
        return self._call(Call("PUT", f"/dags/{_seg(dag_id)}", _one(Dag.from_json),
                               idempotent=True,
                               json={"team": team, "token_binding": token_binding}))

    def list_dags(self) -> list[Dag]:
        """The DAGs this operator may see."""
        return self._call(Call("GET", "/dags", _many(Dag.from_json), idempotent=True))

    def get_dag_access(self, dag_id: str) -> dict[str, Any]:
        """What the DAG's tasks may read: ``declared`` and the declared patterns."""
        return self._call(Call("GET", f"/dags/{_seg(dag_id)}/access", _json, idempotent=True))

    def declare_dag_access(
        self,
        dag_id: str,
        *,
        task_id: str | None = None,
        variables: Iterable[str] = (),
        connections: Iterable[str] = (),
        xcom_from: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Declare what every task of the DAG (or ``task_id``) may read, replacing what was
        declared for it (admin). Answers the whole declaration."""
        body = {"task_id": task_id, "variables": list(variables),
                "connections": list(connections), "xcom_from": list(xcom_from)}
        return self._call(Call("PUT", f"/dags/{_seg(dag_id)}/access", _json,
                               idempotent=True, json=body))

    def clear_dag_access(self, dag_id: str) -> dict[str, Any]:
        """Remove the DAG's declaration: the team rule alone applies again (admin)."""
        return self._call(Call("DELETE", f"/dags/{_seg(dag_id)}/access", _json,
                               idempotent=True))

    def create_run(
        self,
        dag_id: str,
        run_id: str,
        tasks: Iterable[str],
        max_tries: int = 0,
        mapped: Mapping[str, int] | None = None,
    ) -> CreatedRun:
        """A run with one task instance per task (``mapped``: that many, map indexes
        0..n-1), all ``scheduled`` (operator). Not repeated on a lost answer: a second
        run of the same id is a ``Conflict``."""
        body = {"run_id": run_id, "tasks": list(tasks), "max_tries": max_tries,
                "mapped": dict(mapped or {})}
        return self._call(Call("POST", f"/dags/{_seg(dag_id)}/runs",
                               _one(CreatedRun.from_json), idempotent=False, json=body))

    # Task instances --------------------------------------------------------------------

    def list_task_instances(
        self,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        state: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[TaskInstance]:
        """One page (``limit`` 1..1000) of task instances, in DAG, run, task, map-index
        order."""
        params = _query(dag_id=dag_id, run_id=run_id, state=state, limit=limit, offset=offset)
        return self._call(Call("GET", "/task-instances", _many(TaskInstance.from_json),
                               idempotent=True, params=params))

    def get_task_instance(self, ti_id: uuid.UUID | str) -> TaskInstance:
        """One task instance, with its rendered fields and token standing."""
        return self._call(Call("GET", _ti(ti_id), _one(TaskInstance.from_json), idempotent=True))

    def queue(
        self,
        ti_id: uuid.UUID | str,
        format: WorkloadFormat = "taskgate",  # noqa: A002 - the API's own name
        *,
        dag_rel_path: str | None = None,
        bundle_name: str | None = None,
        bundle_version: str | None = None,
    ) -> Queued:
        """Queue the TI and get the workload that starts it (operator): ``raw`` is what a
        worker is handed. A TI that is running already is a ``Conflict``. Not repeated on
        a lost answer: each call issues a new workload token."""
        body: dict[str, Any] = {"format": format}
        if format == "airflow":
            body |= {"dag_rel_path": dag_rel_path, "bundle_name": bundle_name,
                     "bundle_version": bundle_version}
        return self._call(Call("POST", _ti(ti_id, "queue"), _one(Queued.from_json),
                               idempotent=False, json=body))

    def revoke_tokens(self, ti_id: uuid.UUID | str) -> TokensRevoked:
        """Refuse every token issued for the TI until now (operator)."""
        return self._call(Call("POST", _ti(ti_id, "revoke-tokens"),
                               _one(TokensRevoked.from_json), idempotent=True))

    # Variables and connections ---------------------------------------------------------

    def put_variable(
        self, key: str, value: str, *, description: str | None = None, team: str | None = None
    ) -> Variable:
        """Create or replace a variable (admin)."""
        body = {"value": value, "description": description, "team": team}
        return self._call(Call("PUT", f"/variables/{_seg(key)}", _one(Variable.from_json),
                               idempotent=True, json=body))

    def get_variable(self, key: str) -> Variable:
        """A variable; its ``value`` for admins only."""
        return self._call(Call("GET", f"/variables/{_seg(key)}", _one(Variable.from_json),
                               idempotent=True))

    def list_variables(self) -> list[Variable]:
        return self._call(Call("GET", "/variables", _many(Variable.from_json), idempotent=True))

    def delete_variable(self, key: str) -> None:
        """Delete a variable (admin); ``NotFound`` if there is none. Not repeated on a lost
        answer: the repeat would be told ``NotFound``."""
        return self._call(Call("DELETE", f"/variables/{_seg(key)}", _nothing, idempotent=False))

    def put_connection(
        self,
        conn_id: str,
        uri: str | None = None,
        *,
        team: str | None = None,
        **fields: Any,
    ) -> Connection:
        """Create or replace a connection (admin), from a URI
        (``conn-type://login:password@host:port/schema?extra=1``) or from its fields
        (``conn_type``, ``host``, ``schema``, ``login``, ``password``, ``port``,
        ``extra``)."""
        body = {"uri": uri, "team": team, **fields} if uri is not None else {"team": team, **fields}
        return self._call(Call("PUT", f"/connections/{_seg(conn_id)}",
                               _one(Connection.from_json), idempotent=True, json=body))

    def get_connection(self, conn_id: str) -> Connection:
        """A connection; its password and extra for admins only (else ``***``)."""
        return self._call(Call("GET", f"/connections/{_seg(conn_id)}",
                               _one(Connection.from_json), idempotent=True))

    def list_connections(self) -> list[Connection]:
        return self._call(Call("GET", "/connections", _many(Connection.from_json),
                               idempotent=True))

    def delete_connection(self, conn_id: str) -> None:
        """Delete a connection (admin); ``NotFound`` if there is none."""
        return self._call(Call("DELETE", f"/connections/{_seg(conn_id)}", _nothing,
                               idempotent=False))

    # XComs -----------------------------------------------------------------------------

    def list_xcoms(
        self,
        *,
        dag_id: str | None = None,
        run_id: str | None = None,
        task_id: str | None = None,
        key: str | None = None,
    ) -> list[XCom]:
        params = _query(dag_id=dag_id, run_id=run_id, task_id=task_id, key=key)
        return self._call(Call("GET", "/xcoms", _many(XCom.from_json), idempotent=True,
                               params=params))

    def get_xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", *,
        map_index: int = -1,
    ) -> Any:
        """One XCom's value, as the task pushed it."""
        path = f"/xcoms/{_seg(dag_id)}/{_seg(run_id)}/{_seg(task_id)}/{_seg(key)}"
        return self._call(Call("GET", path, _json, idempotent=True,
                               params={"map_index": map_index}))

    # Operators (admin of every team) ---------------------------------------------------

    def add_operator(self, name: str, role: Role, teams: Iterable[str] = ()) -> OperatorInfo:
        """A new operator; its ``key`` is in this answer and nowhere else, ever."""
        body = {"name": name, "role": role, "teams": list(teams)}
        return self._call(Call("POST", "/operators", _one(OperatorInfo.from_json),
                               idempotent=False, json=body))

    def list_operators(self) -> list[OperatorInfo]:
        return self._call(Call("GET", "/operators", _many(OperatorInfo.from_json),
                               idempotent=True))

    def revoke_operator(self, name: str) -> OperatorInfo:
        """Refuse the operator's key from its next request on."""
        return self._call(Call("DELETE", f"/operators/{_seg(name)}",
                               _one(OperatorInfo.from_json), idempotent=False))

    # Events ----------------------------------------------------------------------------

    def list_audit_reads(
        self,
        *,
        ti_id: uuid.UUID | str | None = None,
        dag_id: str | None = None,
        key: str | None = None,
        since: str | None = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Recorded reads of variables and connections by tasks, newest first (reader);
        ``since`` is ISO 8601."""
        params = _query(ti_id=str(ti_id) if ti_id is not None else None, dag_id=dag_id,
                        key=key, since=since, limit=limit)
        return self._call(Call("GET", "/audit/reads", _json, idempotent=True, params=params))

    def list_events(
        self, after: int | None = None, dag_id: str | None = None, *, limit: int = 1000
    ) -> list[Event]:
        """The events kept after ``after`` (None: the oldest kept), at most ``limit``,
        oldest first, without waiting for new ones. ``events`` follows the feed."""
        params = _query(follow="false", after=after, dag_id=dag_id, limit=limit)
        return self._call(Call("GET", "/events", _many(Event.from_json), idempotent=True,
                               params=params))
