"""Every Execution API route as a method, shared by ``Client`` and ``AsyncClient``.

Each method builds a ``Call`` and hands it to ``self._call``: the sync client returns
the result, the async client a coroutine of it (so on ``AsyncClient`` every method is
awaited). Bodies and answers are the server's own wire models.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, JsonValue

from taskgate.client.exchange import Call
from taskgate.wire.http import (
    CONNECTIONS,
    HEALTH,
    TASK_INSTANCES,
    VARIABLES,
    XCOM_COUNT_HEADER,
    XCOM_COUNT_UNIT,
    XCOMS,
)
from taskgate.wire.runtime_data import (
    ConnectionResponse,
    VariableKeysResponse,
    VariableResponse,
    XComResponse,
)
from taskgate.wire.task_instances import (
    PrevSuccessfulDagRunResponse,
    TIEnterRunningPayload,
    TIHeartbeatInfo,
    TIRetryStatePayload,
    TIRunContext,
    TISkippedDownstreamTasksStatePayload,
    TISuccessStatePayload,
    TITerminalStatePayload,
)

M = TypeVar("M", bound=BaseModel)

FinalState = Literal["success", "failed", "up_for_retry", "skipped", "removed", "upstream_failed"]
StatePayload = BaseModel  # one of the TI*StatePayload wire models


def _model(model: type[M]) -> Any:
    return lambda response: model.model_validate_json(response.content)


def _nothing(response: httpx.Response) -> None:
    return None


def _json(response: httpx.Response) -> Any:
    return response.json()


def _xcom_count(response: httpx.Response) -> int:
    return int(response.headers.get(XCOM_COUNT_HEADER, f"{XCOM_COUNT_UNIT} 0").rsplit(" ", 1)[-1])


# What a path segment may hold as it is (RFC 3986 §3.3 pchar, besides letters, digits and
# "-._~"): Airflow's run ids ("manual__2026-01-01T00:00:00+00:00") then travel unescaped,
# so the URL a DPoP proof names is the one the server sees, however it decodes the path.
_PCHAR = "!$&'()*+,;=:@"


def _segment(value: str) -> str:
    return quote(value, safe=_PCHAR)


def _key(value: str) -> str:
    # Variable and XCom keys may contain "/" (the routes take the rest of the path).
    return quote(value, safe=_PCHAR + "/")


def _body(payload: BaseModel) -> Any:
    return payload.model_dump(mode="json")


def _ti(ti_id: uuid.UUID | str, rest: str) -> str:
    return f"{TASK_INSTANCES}/{uuid.UUID(str(ti_id))}/{rest}"


def _xcom(dag_id: str, run_id: str, task_id: str, key: str, rest: str = "") -> str:
    path = f"{XCOMS}/{_segment(dag_id)}/{_segment(run_id)}/{_segment(task_id)}/{_key(key)}"
    return f"{path}/{rest}" if rest else path


class ExecutionRoutes(ABC):
    @abstractmethod
    def _call(self, call: Call[Any]) -> Any:
        """Send one call: the sync client returns its answer, the async one an awaitable."""

    # Health (no token) -----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call(Call("GET", HEALTH, _json, idempotent=True))

    def ping(self) -> dict[str, Any]:
        return self._call(Call("GET", f"{HEALTH}/ping", _json, idempotent=True))

    # Task instance lifecycle -----------------------------------------------------------

    def run(
        self,
        ti_id: uuid.UUID | str,
        *,
        hostname: str,
        unixname: str,
        pid: int,
        start_date: datetime | None = None,
    ) -> TIRunContext:
        """Start the TI. With a workload token the client swaps to the execution token of
        the answer. Never retried: the workload token is single-use, so a repeat would be
        refused (409, reason ``workload_token_reused``) even when the first call got through."""
        payload = TIEnterRunningPayload(
            hostname=hostname, unixname=unixname, pid=pid, start_date=start_date or _now()
        )
        return self._call(
            Call("PATCH", _ti(ti_id, "run"), _model(TIRunContext), idempotent=False,
                 json=_body(payload))
        )

    def heartbeat(self, ti_id: uuid.UUID | str, *, hostname: str, pid: int) -> None:
        payload = TIHeartbeatInfo(hostname=hostname, pid=pid)
        return self._call(
            Call("PUT", _ti(ti_id, "heartbeat"), _nothing, idempotent=True, json=_body(payload))
        )

    def report_state(self, ti_id: uuid.UUID | str, payload: StatePayload) -> None:
        """Report a state with one of the ``TI*StatePayload`` wire models. Retried: the
        server answers an identical repeat of a report with 204."""
        return self._call(
            Call("PATCH", _ti(ti_id, "state"), _nothing, idempotent=True, json=_body(payload))
        )

    def finish(
        self,
        ti_id: uuid.UUID | str,
        state: FinalState,
        *,
        end_date: datetime | None = None,
        retry_reason: str | None = None,
    ) -> None:
        """Report how the TI ended: ``success``, ``up_for_retry`` or a terminal state."""
        end = end_date or _now()
        payload: BaseModel
        if state == "success":
            payload = TISuccessStatePayload(end_date=end)
        elif state == "up_for_retry":
            payload = TIRetryStatePayload(end_date=end, retry_reason=retry_reason)
        else:
            payload = TITerminalStatePayload(state=state, end_date=end)
        return self.report_state(ti_id, payload)

    def set_rendered_fields(self, ti_id: uuid.UUID | str, fields: dict[str, JsonValue]) -> None:
        return self._call(
            Call("PUT", _ti(ti_id, "rtif"), _nothing, idempotent=True, json=fields)
        )

    def set_rendered_map_index(self, ti_id: uuid.UUID | str, rendered_map_index: str) -> None:
        return self._call(
            Call("PATCH", _ti(ti_id, "rendered-map-index"), _nothing, idempotent=True,
                 json=rendered_map_index)
        )

    def skip_downstream(
        self, ti_id: uuid.UUID | str, tasks: Sequence[str | tuple[str, int]]
    ) -> None:
        payload = TISkippedDownstreamTasksStatePayload(tasks=list(tasks))
        return self._call(
            Call("PATCH", _ti(ti_id, "skip-downstream"), _nothing, idempotent=True,
                 json=_body(payload))
        )

    def previous_successful_dagrun(self, ti_id: uuid.UUID | str) -> PrevSuccessfulDagRunResponse:
        return self._call(
            Call("GET", _ti(ti_id, "previous-successful-dagrun"),
                 _model(PrevSuccessfulDagRunResponse), idempotent=True)
        )

    # Connections and variables ---------------------------------------------------------

    def get_connection(self, conn_id: str) -> ConnectionResponse:
        return self._call(
            Call("GET", f"{CONNECTIONS}/{_segment(conn_id)}", _model(ConnectionResponse),
                 idempotent=True)
        )

    def get_variable(self, key: str) -> VariableResponse:
        return self._call(
            Call("GET", f"{VARIABLES}/{_key(key)}", _model(VariableResponse), idempotent=True)
        )

    def set_variable(self, key: str, value: str | None, *, description: str | None = None) -> None:
        body = {"val": value, "description": description}
        return self._call(Call("PUT", f"{VARIABLES}/{_key(key)}", _nothing, idempotent=True, json=body))

    def delete_variable(self, key: str) -> None:
        return self._call(Call("DELETE", f"{VARIABLES}/{_key(key)}", _nothing, idempotent=True))

    def variable_keys(
        self, *, prefix: str | None = None, limit: int = 1000, offset: int = 0
    ) -> VariableKeysResponse:
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if prefix is not None:
            params["prefix"] = prefix
        return self._call(
            Call("GET", f"{VARIABLES}/keys", _model(VariableKeysResponse), idempotent=True,
                 params=params)
        )

    # XComs -----------------------------------------------------------------------------

    def get_xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str, *, map_index: int = -1
    ) -> XComResponse:
        return self._call(
            Call("GET", _xcom(dag_id, run_id, task_id, key), _model(XComResponse),
                 idempotent=True, params={"map_index": map_index})
        )

    def push_xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str, value: JsonValue,
        *, map_index: int = -1,
    ) -> None:
        """Store an XCom of this TI. Retried: the server keeps the last value written."""
        return self._call(
            Call("POST", _xcom(dag_id, run_id, task_id, key), _nothing, idempotent=True,
                 json=value, params={"map_index": map_index})
        )

    def delete_xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str, *, map_index: int = -1
    ) -> None:
        return self._call(
            Call("DELETE", _xcom(dag_id, run_id, task_id, key), _nothing, idempotent=True,
                 params={"map_index": map_index})
        )

    def count_xcoms(self, dag_id: str, run_id: str, task_id: str, key: str) -> int:
        """How many map indexes pushed this key (``HEAD``)."""
        return self._call(
            Call("HEAD", _xcom(dag_id, run_id, task_id, key), _xcom_count, idempotent=True)
        )

    def get_xcom_item(
        self, dag_id: str, run_id: str, task_id: str, key: str, offset: int
    ) -> JsonValue:
        """One value of a mapped task's XCom; a negative offset counts from the end."""
        return self._call(
            Call("GET", _xcom(dag_id, run_id, task_id, key, f"item/{offset}"), _json,
                 idempotent=True)
        )

    def get_xcom_slice(
        self, dag_id: str, run_id: str, task_id: str, key: str,
        *, start: int | None = None, stop: int | None = None, step: int | None = None,
    ) -> list[JsonValue]:
        bounds = {"start": start, "stop": stop, "step": step}
        return self._call(
            Call("GET", _xcom(dag_id, run_id, task_id, key, "slice"), _json, idempotent=True,
                 params={k: v for k, v in bounds.items() if v is not None})
        )


def _now() -> datetime:
    return datetime.now(UTC)
