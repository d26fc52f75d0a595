"""No request holds two pooled database connections at once.

The token gate (``StandingLookup``) and the re-issue middleware open sessions of their
own, next to the request's session. If any of them ran while another connection of the
same request was still checked out, a SQLite server (one connection per process) would
wait for itself until the pool timeout and answer 503 to every such request, and under
load a PostgreSQL pool would deadlock the same way once every connection was held by a
request waiting for a second one. Every route a worker uses runs here with tokens that are
refreshed on every answer (the re-issue path) and with the workload token (the /run
path), one request at a time, while pool events count the connections checked out.
"""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import event

from taskgate.services import connections, operators, variables
from taskgate.services.operators import Role
from taskgate.settings import Settings
from tests.support.api import BEAT_BODY, RUN_BODY, SUCCESS_BODY, bearer

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(data_dir, database_url):
    # 29 s tokens: under the 30 s refresh floor at once, so every answer re-issues.
    return Settings(data_dir=data_dir, database_url=database_url, execution_token_ttl=29)


class Checkouts:
    def __init__(self) -> None:
        self.now = 0
        self.most = 0

    def checkout(self, *_args: object) -> None:
        self.now += 1
        self.most = max(self.most, self.now)

    def checkin(self, *_args: object) -> None:
        self.now -= 1


async def test_one_connection_per_request_at_a_time(live_server, factory, runtime):
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "v", "value")
        await connections.put(session, runtime.secrets, "c", connections.parse_uri("postgres://u:p@h:5432/d"))
    ti = await factory.queued_ti()
    pool = live_server.runtime.engine.sync_engine.pool
    counter = Checkouts()
    event.listen(pool, "checkout", counter.checkout)
    event.listen(pool, "checkin", counter.checkin)
    refreshed = 0
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution", timeout=5) as http:
        token = ti.workload_token

        async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
            nonlocal token, refreshed
            response = await http.request(method, path, headers=bearer(token), **kwargs)
            assert response.status_code < 300, (method, path, response.status_code, response.text)
            assert response.elapsed.total_seconds() < 1.5, (method, path, response.elapsed)
            if fresh := response.headers.get("Refreshed-API-Token"):
                token, refreshed = fresh, refreshed + 1
            return response

        tis = f"/task-instances/{ti.id}"
        xcom = f"/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/return_value"
        await call("PATCH", f"{tis}/run", json=RUN_BODY)
        await call("PUT", f"{tis}/heartbeat", json=BEAT_BODY)
        await call("GET", "/variables/v")
        await call("PUT", "/variables/w", json={"val": "x"})
        await call("GET", "/connections/c")
        await call("POST", xcom, json={"rows": 3})
        await call("GET", xcom)
        await call("HEAD", xcom)
        await call("PUT", f"{tis}/rtif", json={"cmd": "echo"})
        await call("GET", f"{tis}/previous-successful-dagrun")
        await call("PATCH", f"{tis}/state", json=SUCCESS_BODY)
    event.remove(pool, "checkout", counter.checkout)
    event.remove(pool, "checkin", counter.checkin)
    assert refreshed >= 10  # /run's exchange and a re-issue on (nearly) every later answer
    assert counter.most == 1, f"a request held {counter.most} connections at once"
    assert counter.now == 0


async def test_control_routes_hold_one_connection_at_a_time(live_server, runtime):
    """The operator check reads the operator with a session of its own, closed before the
    route's; queueing checks visibility before the lifecycle takes its connection."""
    async with runtime.sessionmaker() as session:
        admin = bearer((await operators.add_operator(session, "pool", Role.ADMIN)).key)
    pool = live_server.runtime.engine.sync_engine.pool
    counter = Checkouts()
    event.listen(pool, "checkout", counter.checkout)
    event.listen(pool, "checkin", counter.checkin)
    async with httpx.AsyncClient(base_url=f"{live_server.url}/control/v1", headers=admin,
                                 timeout=5) as http:

        async def call(method: str, path: str, **kwargs: object) -> httpx.Response:
            response = await http.request(method, path, **kwargs)
            assert response.status_code < 300, (method, path, response.status_code, response.text)
            assert response.elapsed.total_seconds() < 1.5, (method, path, response.elapsed)
            return response

        await call("PUT", "/dags/d", json={})
        await call("GET", "/dags")
        ti = (await call("POST", "/dags/d/runs", json={"run_id": "r", "tasks": ["t"]})).json()[
            "task_instances"][0]["id"]
        await call("GET", "/task-instances", params={"dag_id": "d"})
        await call("GET", f"/task-instances/{ti}")
        await call("POST", f"/task-instances/{ti}/queue")
        await call("POST", f"/task-instances/{ti}/revoke-tokens")
        await call("PUT", "/variables/v", json={"value": "x"})
        await call("GET", "/variables")
        await call("GET", "/variables/v")
        await call("DELETE", "/variables/v")
        await call("PUT", "/connections/c", json={"uri": "postgres://u:p@h:5432/d"})
        await call("GET", "/connections")
        await call("GET", "/connections/c")
        await call("DELETE", "/connections/c")
        await call("GET", "/xcoms", params={"dag_id": "d"})
        await call("GET", "/operators")
        await call("POST", "/operators", json={"name": "other", "role": "reader", "teams": []})
        await call("DELETE", "/operators/other")
        backlog = (await call("GET", "/events", params={"follow": "false"})).json()
        async with http.stream("GET", "/events", params={"after": backlog[-5]["id"]}) as stream:
            seen = 0
            async for line in stream.aiter_lines():
                seen += line.startswith("id: ")
                if seen == 4:
                    break
    event.remove(pool, "checkout", counter.checkout)
    event.remove(pool, "checkin", counter.checkin)
    assert counter.most == 1, f"a request held {counter.most} connections at once"
