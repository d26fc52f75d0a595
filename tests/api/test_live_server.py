"""A worker's whole walk (lifecycle, refusals, correlation id) through a real uvicorn
server on 127.0.0.1."""

import time

import httpx
import jwt
import pytest

from taskgate.services import connections, variables
from taskgate.services.task_instances import get_task_instance
from taskgate.tokens import TokenIssuer
from taskgate.tokens import keys as keylib
from tests.support.api import BEAT_BODY, RUN_BODY, SUCCESS_BODY, bearer

pytestmark = pytest.mark.integration

WORKLOAD_REFUSED = "Token type 'workload' not allowed for this endpoint. Allowed types: execution"


async def test_whole_lifecycle_over_http(live_server, factory, runtime):
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "greeting", "hello")
        await connections.put(session, runtime.secrets, "warehouse", connections.parse_uri("postgres://u:pw@wh:5432/dw"))
    ti = await factory.queued_ti(dag_id="demo", task_id="hello", run_id="r1")
    other = await factory.queued_ti(dag_id="demo", task_id="other", run_id="r2")
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution") as http:
        tis = f"/task-instances/{ti.id}"
        run = await http.patch(f"{tis}/run", json=RUN_BODY, headers=bearer(ti.workload_token))
        assert run.status_code == 200 and run.json()["dag_run"]["run_id"] == "r1"
        execution = run.headers["Refreshed-API-Token"]

        refused = await http.put(f"{tis}/heartbeat", json=BEAT_BODY, headers=bearer(ti.workload_token))
        assert (refused.status_code, refused.json()["detail"]) == (403, WORKLOAD_REFUSED)
        foreign = await http.put(f"/task-instances/{other.id}/heartbeat", json=BEAT_BODY, headers=bearer(execution))
        assert foreign.json() == {"detail": "Token subject does not match task instance ID"}
        assert foreign.status_code == 403

        auth = bearer(execution)
        assert (await http.put(f"{tis}/heartbeat", json=BEAT_BODY, headers=auth)).status_code == 204
        assert (await http.get("/variables/greeting", headers=auth)).json()["value"] == "hello"
        assert (await http.get("/connections/warehouse", headers=auth)).json()["host"] == "wh"
        assert (await http.put(f"{tis}/rtif", json={"cmd": "echo hello"}, headers=auth)).status_code == 201
        xcom = await http.post("/xcoms/demo/r1/hello/return_value", json="hi", headers=auth)
        assert xcom.status_code == 201
        assert (await http.patch(f"{tis}/state", json=SUCCESS_BODY, headers=auth)).status_code == 204

    async with runtime.sessionmaker() as session:
        assert (await get_task_instance(session, ti.id)).state == "success"


async def test_bad_tokens_over_http(live_server, factory, runtime):
    ti = await factory.queued_ti()
    signing = runtime.keys.signing
    stranger = keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))
    now = int(time.time())
    expired_issuer = TokenIssuer(signing, audience=runtime.settings.audience, clock=lambda: now - 3600)
    good = factory.token(ti.id)
    _header, payload, signature = good.split(".")
    alg_changed = jwt.api_jws.base64url_encode(
        b'{"alg":"HS512","kid":"%s","typ":"JWT"}' % signing.kid.encode()
    ).decode()
    cases = {
        "other key": TokenIssuer(stranger, audience=runtime.settings.audience).issue(ti.id),
        "expired": expired_issuer.issue(ti.id),
        "alg changed": f"{alg_changed}.{payload}.{signature}",
    }
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution") as http:
        for name, token in cases.items():
            response = await http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY, headers=bearer(token))
            assert response.status_code == 403, name
            assert response.json() == {"detail": "Invalid auth token"}, name
        missing = await http.patch(f"/task-instances/{ti.id}/run", json=RUN_BODY)
        assert (missing.status_code, missing.json()) == (401, {"detail": "Missing auth token"})


async def test_correlation_id_is_echoed(live_server):
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        response = await http.get("/execution/health", headers={"correlation-id": "abc-123"})
    assert response.headers["correlation-id"] == "abc-123"


async def test_jwks_publishes_the_signing_key(live_server, runtime):
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        document = (await http.get("/.well-known/jwks.json")).json()
    (key,) = document["keys"]
    assert key["kid"] == runtime.keys.signing.kid and key["alg"] == "EdDSA" and "d" not in key
