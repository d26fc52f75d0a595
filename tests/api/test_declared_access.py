"""Declared access over the Execution API: a DAG with a declaration reads only what it
declares (and still only its team's and global entries); undeclared keys are refused the
same whether they exist or not; per-task lines; other DAGs' XComs; the server-wide
requirement; and a change reaching a running task within the standing cache's second."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.services import connections, control, declared_access, variables
from taskgate.services.declared_access import Allowance
from tests.support.api import RUN_BODY, bearer

VARS = "/execution/variables"
CONNS = "/execution/connections"


async def _seed(runtime: Runtime) -> None:
    async with runtime.sessionmaker() as session:
        for key, team in (("etl_rows", "data"), ("etl_secret", None), ("other", "data"),
                          ("ml_key", "ml")):
            await variables.put(session, runtime.secrets, key, "v", team=team)
        await connections.put(
            session, runtime.secrets, "warehouse", connections.parse_uri("postgres://u:p@db/x"),
            team="data",
        )
        await connections.put(
            session, runtime.secrets, "crm", connections.parse_uri("http://crm"), team="data"
        )


async def _declare(runtime: Runtime, dag_id: str, task_id: str | None = None, **lines) -> None:
    async with runtime.sessionmaker() as session:
        await declared_access.declare(
            session, dag_id, Allowance.from_dict(lines), task_id=task_id
        )


def _reason(response: httpx.Response) -> tuple[int, str | None]:
    return response.status_code, response.headers.get("Taskgate-Reason")


async def test_a_declared_dag_reads_only_what_it_declares(client, factory, runtime):
    await _seed(runtime)
    _ti, token = await factory.running_ti(client, dag_id="etl", team="data")
    auth = bearer(token)
    assert (await client.get(f"{VARS}/other", headers=auth)).status_code == 200  # team rule
    await _declare(runtime, "etl", variables=["etl_*", "ml_key"], connections=["warehouse"])
    runtime.standing.forget(_ti.id)  # this process changed it (other replicas: the live test)

    assert (await client.get(f"{VARS}/etl_rows", headers=auth)).json()["value"] == "v"  # glob
    assert (await client.get(f"{VARS}/etl_secret", headers=auth)).status_code == 200  # global
    # Declared, but of another team: the team rule still refuses it.
    assert _reason(await client.get(f"{VARS}/ml_key", headers=auth)) == (403, "other_team")
    # Undeclared: refused before the lookup, the same for an existing and a missing key.
    present = await client.get(f"{VARS}/other", headers=auth)
    absent = await client.get(f"{VARS}/no_such_key", headers=auth)
    assert _reason(present) == _reason(absent) == (403, "not_declared")
    assert present.json()["detail"]["reason"] == absent.json()["detail"]["reason"] == "access_denied"
    assert "other" in present.json()["detail"]["message"]
    # A declared pattern that matches nothing stored: 404, as without declarations.
    assert (await client.get(f"{VARS}/etl_missing", headers=auth)).status_code == 404

    assert (await client.get(f"{CONNS}/warehouse", headers=auth)).status_code == 200
    assert _reason(await client.get(f"{CONNS}/crm", headers=auth)) == (403, "not_declared")


async def test_a_task_reads_its_dags_lines_and_its_own(client, factory, runtime):
    await _seed(runtime)
    await factory.queued_ti(dag_id="etl", team="data")  # registers the DAG
    await _declare(runtime, "etl", variables=["etl_rows"])
    await _declare(runtime, "etl", "load", connections=["warehouse"], variables=["other"])
    load, load_token = await factory.running_ti(client, dag_id="etl", task_id="load", team="data")
    extract, extract_token = await factory.running_ti(
        client, dag_id="etl", task_id="extract", team="data"
    )
    for path in (f"{VARS}/etl_rows", f"{VARS}/other", f"{CONNS}/warehouse"):
        assert (await client.get(path, headers=bearer(load_token))).status_code == 200, path
    assert (await client.get(f"{VARS}/etl_rows", headers=bearer(extract_token))).status_code == 200
    for path in (f"{VARS}/other", f"{CONNS}/warehouse"):
        refused = await client.get(path, headers=bearer(extract_token))
        assert _reason(refused) == (403, "not_declared"), path


async def test_xcoms_of_another_dag_only_when_declared(client, factory, runtime):
    upstream, up_token = await factory.running_ti(client, dag_id="upstream", task_id="t")
    pushed = await client.post(
        f"/execution/xcoms/upstream/{upstream.run_id}/t/rows", json=[1, 2], headers=bearer(up_token)
    )
    assert pushed.status_code == 201
    url = f"/execution/xcoms/upstream/{upstream.run_id}/t/rows"

    reader, token = await factory.running_ti(client, dag_id="reader", task_id="r")
    assert _reason(await client.get(url, headers=bearer(token))) == (403, "other_dag")

    await _declare(runtime, "reader", variables=["x"])  # declared, but not upstream's XComs
    runtime.standing.forget(reader.id)
    assert _reason(await client.get(url, headers=bearer(token))) == (403, "not_declared")

    await _declare(runtime, "reader", xcom_from=["upstream"])
    runtime.standing.forget(reader.id)
    assert (await client.get(url, headers=bearer(token))).json()["value"] == [1, 2]
    # Its own DAG's XComs stay readable whatever it declares; writing elsewhere never is.
    own = f"/execution/xcoms/reader/{reader.run_id}/r/k"
    assert (await client.post(own, json=1, headers=bearer(token))).status_code == 201
    assert (await client.get(own, headers=bearer(token))).status_code == 200
    assert _reason(await client.post(url, json=3, headers=bearer(token))) == (403, "other_task_instance")


async def test_a_server_that_requires_declarations_gives_an_undeclared_dag_nothing(
    settings, runtime, factory
):
    await _seed(runtime)
    strict = Runtime.from_settings(settings.model_copy(update={"require_declared_access": True}))
    transport = httpx.ASGITransport(app=create_app(strict))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://taskgate") as client:
            ti, token = await factory.running_ti(client, dag_id="etl", team="data")
            auth = bearer(token)
            for path in (f"{VARS}/etl_rows", f"{VARS}/etl_secret", f"{CONNS}/warehouse"):
                assert _reason(await client.get(path, headers=auth)) == (403, "not_declared"), path
            own = f"/execution/xcoms/etl/{ti.run_id}/task/k"
            assert (await client.post(own, json=1, headers=auth)).status_code == 201
            assert (await client.get(own, headers=auth)).status_code == 200

            await _declare(runtime, "etl", variables=["etl_rows"])
            strict.standing.forget(ti.id)
            assert (await client.get(f"{VARS}/etl_rows", headers=auth)).status_code == 200
            assert _reason(await client.get(f"{CONNS}/warehouse", headers=auth)) == (403, "not_declared")
    finally:
        await strict.aclose()


@pytest.mark.integration
async def test_a_change_reaches_a_running_task_on_another_replica_within_a_second(
    live_server, runtime, factory
):
    """The server runs in its own runtime (its own standing cache, as another replica);
    the declaration changes through this process's session, as the CLI or another
    replica would. Each answer's outcome flips within the cache's second."""
    await _seed(runtime)
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        ti = await factory.queued_ti(dag_id="etl", team="data")
        started = await client.patch(
            f"/execution/task-instances/{ti.id}/run",
            json=RUN_BODY,
            headers=bearer(ti.workload_token),
        )
        assert started.status_code == 200, started.text
        auth = bearer(started.headers["Refreshed-API-Token"])

        async def seconds_until(status: int) -> float:
            changed = time.monotonic()
            while (await client.get(f"{VARS}/other", headers=auth)).status_code != status:
                assert time.monotonic() - changed < 5, "the change never arrived"
                await asyncio.sleep(0.02)
            return time.monotonic() - changed

        assert (await client.get(f"{VARS}/other", headers=auth)).status_code == 200  # cached now
        await _declare(runtime, "etl", variables=["etl_*"])
        refused_after = await seconds_until(403)
        async with runtime.sessionmaker() as session:
            await declared_access.undeclare(session, "etl")
        allowed_after = await seconds_until(200)
    # The standing cache holds an entry for at most a second; a little for the requests.
    assert refused_after < 1.2 and allowed_after < 1.2, (refused_after, allowed_after)


async def test_declarations_are_control_plane_data(runtime):
    async with runtime.sessionmaker() as session:
        with pytest.raises(Exception) as missing:
            await declared_access.declare(session, "nope", Allowance(variables=("x",)))
        assert getattr(missing.value, "reason", None) == "not_found"
        await control.add_dag(session, "d")
        with pytest.raises(Exception) as empty:
            await declared_access.declare(session, "d", Allowance(variables=("",)))
        assert getattr(empty.value, "reason", None) == "invalid_declaration"
        assert await declared_access.declaration(session, "d") is None
