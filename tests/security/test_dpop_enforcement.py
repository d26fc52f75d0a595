"""DPoP-bound tokens (RFC 9449) over real HTTP: /run binds the execution token to the key
of its proof, and a bound token is refused, with its reason, whenever a request does not
prove that key: no proof, sent as Bearer, another key, method or URL, a wrong token hash,
a proof too old or from the future, a proof signed with none, a MAC or an embedded
private key, a proof used before (on this server or another replica)."""

from __future__ import annotations

import base64
import json
import time
import uuid

import httpx
import pytest

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.tokens.dpop import access_token_hash
from tests.support.api import BEAT_BODY, RUN_BODY, bearer
from tests.support.asgi_server import serving
from tests.support.dpop import ProofKey

pytestmark = pytest.mark.integration


async def start_bound(http: httpx.AsyncClient, factory, key: ProofKey):  # type: ignore[no-untyped-def]
    """A TI started through /run with a proof of ``key``; the TI and its execution token."""
    ti = await factory.queued_ti()
    url = f"{http.base_url}/execution/task-instances/{ti.id}/run"
    answer = await http.patch(url, json=RUN_BODY, headers={
        **bearer(ti.workload_token), "DPoP": key.proof("PATCH", url, ti.workload_token)})
    assert answer.status_code == 200, answer.text
    return ti, answer.headers["Refreshed-API-Token"]


@pytest.fixture
async def http(live_server):  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as client:
        yield client


async def test_run_with_a_proof_binds_the_token_to_that_key(http, factory, live_server):
    key = ProofKey()
    ti, token = await start_bound(http, factory, key)
    assert live_server.runtime.validator.validate(token).jkt == key.jkt
    url = f"{http.base_url}/execution/task-instances/{ti.id}/heartbeat"
    beat = await http.put(url, json=BEAT_BODY, headers=key.headers("PUT", url, token))
    assert beat.status_code == 204, beat.text
    read = f"{http.base_url}/execution/variables/absent"
    missing = await http.get(read, headers=key.headers("GET", read, token))
    assert missing.status_code == 404  # authorized; the variable does not exist


async def test_run_without_a_proof_issues_a_bearer_token(http, factory, live_server):
    ti = await factory.queued_ti()
    answer = await http.patch(f"/execution/task-instances/{ti.id}/run", json=RUN_BODY,
                              headers=bearer(ti.workload_token))
    token = answer.headers["Refreshed-API-Token"]
    assert live_server.runtime.validator.validate(token).jkt is None
    url = f"{http.base_url}/execution/task-instances/{ti.id}/heartbeat"
    as_dpop = await http.put(url, json=BEAT_BODY, headers=ProofKey().headers("PUT", url, token))
    assert as_dpop.status_code == 401
    assert as_dpop.headers["Taskgate-Reason"] == "token_not_bound"


def _b64json(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def _unsigned(key: ProofKey, method: str, url: str, token: str) -> str:
    header = {"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk}
    claims = {"jti": uuid.uuid4().hex, "htm": method, "htu": url, "iat": int(time.time()),
              "ath": access_token_hash(token)}
    return f"{_b64json(header)}.{_b64json(claims)}."


WINDOW = 60  # TASKGATE_DPOP_PROOF_WINDOW's default

# name: (the reason the server gives, the headers, from (key, method, url, token))
ATTACKS = {
    "no proof": ("missing_dpop_proof", lambda k, m, u, t: {"Authorization": f"DPoP {t}"}),
    "two proofs": ("missing_dpop_proof", lambda k, m, u, t: [
        ("Authorization", f"DPoP {t}"), ("DPoP", k.proof(m, u, t)), ("DPoP", k.proof(m, u, t))]),
    "sent as Bearer, with its proof": ("dpop_proof_required", lambda k, m, u, t: {
        **bearer(t), "DPoP": k.proof(m, u, t)}),
    "another key's proof": ("key_mismatch", lambda k, m, u, t: ProofKey().headers(m, u, t)),
    "another key's proof (P-256)": ("key_mismatch", lambda k, m, u, t: ProofKey("ES256").headers(m, u, t)),
    "for another method": ("proof_method_mismatch", lambda k, m, u, t: k.headers(m, u, t, htm="DELETE")),
    "for another URL": ("proof_url_mismatch", lambda k, m, u, t: k.headers(
        m, u, t, htu=u.replace("/execution/", "/execution/other/"))),
    "for another host": ("proof_url_mismatch", lambda k, m, u, t: k.headers(
        m, u, t, htu=u.replace("127.0.0.1", "taskgate.example"))),
    "wrong ath": ("access_token_hash_mismatch", lambda k, m, u, t: k.headers(
        m, u, t, ath=access_token_hash(t + "x"))),
    "no ath": ("proof_missing_claim", lambda k, m, u, t: k.headers(m, u, t, ath=None)),
    "iat past the window": ("proof_expired", lambda k, m, u, t: k.headers(
        m, u, t, iat=int(time.time()) - WINDOW - 30)),
    "iat in the future": ("proof_not_yet_valid", lambda k, m, u, t: k.headers(
        m, u, t, iat=int(time.time()) + 120)),
    "alg none": ("proof_algorithm_not_allowed", lambda k, m, u, t: {
        "Authorization": f"DPoP {t}", "DPoP": _unsigned(k, m, u, t)}),
    "HS256 with the public key as secret": ("proof_algorithm_not_allowed", lambda k, m, u, t: k.headers(
        m, u, t, key=k.jwk["x"].encode() * 2, alg="HS256")),
    "embedded private key": ("proof_key_invalid", lambda k, m, u, t: k.headers(
        m, u, t, headers={"jwk": k.private_jwk})),
    "wrong typ": ("proof_type_invalid", lambda k, m, u, t: k.headers(m, u, t, headers={"typ": "JWT"})),
    "not a JWT": ("malformed_proof", lambda k, m, u, t: {
        "Authorization": f"DPoP {t}", "DPoP": "not.a-proof"}),
}


@pytest.mark.parametrize("name", list(ATTACKS))
async def test_a_bound_token_without_a_good_proof_is_refused(http, factory, name):
    key = ProofKey()
    ti, token = await start_bound(http, factory, key)
    reason, make = ATTACKS[name]
    for method, path, body in (
        ("PUT", f"/execution/task-instances/{ti.id}/heartbeat", BEAT_BODY),
        ("GET", "/execution/variables/anything", None),
        ("POST", f"/execution/xcoms/{ti.dag_id}/{ti.run_id}/{ti.task_id}/k", {"v": 1}),
        ("PATCH", f"/execution/task-instances/{ti.id}/state",
         {"state": "success", "end_date": "2026-01-01T00:05:00Z"}),
    ):
        url = f"{http.base_url}{path}"
        answer = await http.request(method, url, json=body, headers=make(key, method, url, token))
        assert answer.status_code == 401, (name, path, answer.status_code, answer.text)
        assert answer.headers["Taskgate-Reason"] == reason, (name, path, answer.text)
        error = "invalid_token" if reason == "dpop_proof_required" else "invalid_dpop_proof"
        assert answer.headers["WWW-Authenticate"].startswith(f'DPoP error="{error}"')
        assert "Refreshed-API-Token" not in answer.headers
        assert token not in answer.text
    # Still running and still the key holder's: every refusal above changed nothing.
    url = f"{http.base_url}/execution/task-instances/{ti.id}/heartbeat"
    assert (await http.put(url, json=BEAT_BODY, headers=key.headers("PUT", url, token))).status_code == 204


async def test_a_proof_is_accepted_once(http, factory):
    key = ProofKey()
    ti, token = await start_bound(http, factory, key)
    url = f"{http.base_url}/execution/task-instances/{ti.id}/heartbeat"
    headers = key.headers("PUT", url, token)
    assert (await http.put(url, json=BEAT_BODY, headers=headers)).status_code == 204
    again = await http.put(url, json=BEAT_BODY, headers=headers)
    assert again.status_code == 401
    assert again.headers["Taskgate-Reason"] == "proof_replayed"


async def test_a_proof_used_on_one_replica_is_refused_on_another(http, factory, settings):
    # Two servers on one database (PostgreSQL, or the same SQLite file): what one accepted,
    # the other refuses.
    key = ProofKey()
    ti, token = await start_bound(http, factory, key)
    other_runtime = Runtime.from_settings(settings)
    with serving(create_app(other_runtime), lifespan="on") as other:
        path = f"/execution/task-instances/{ti.id}/heartbeat"
        # The proof names the URL the client called: the same public URL for both replicas.
        public = "http://taskgate.example"
        headers = key.headers("PUT", f"{public}{path}", token)
        for base in (str(http.base_url), other):
            async with httpx.AsyncClient(base_url=base, headers={"Host": "taskgate.example"}) as c:
                answer = await c.put(path, json=BEAT_BODY, headers=headers)
                if base == other:
                    assert answer.status_code == 401, answer.text
                    assert answer.headers["Taskgate-Reason"] == "proof_replayed"
                else:
                    assert answer.status_code == 204, answer.text


async def test_behind_a_proxy_the_proof_names_the_public_url(factory, settings, http):
    key = ProofKey()
    ti, token = await start_bound(http, factory, key)
    public = "https://taskgate.example.com/behind"
    proxied = Runtime.from_settings(settings.model_copy(update={"public_url": public + "/"}))
    with serving(create_app(proxied), lifespan="on") as url:
        path = f"/execution/task-instances/{ti.id}/heartbeat"
        async with httpx.AsyncClient(base_url=url) as client:
            internal = await client.put(path, json=BEAT_BODY,
                                        headers=key.headers("PUT", f"{url}{path}", token))
            assert internal.headers["Taskgate-Reason"] == "proof_url_mismatch"
            answer = await client.put(path, json=BEAT_BODY,
                                      headers=key.headers("PUT", f"{public}{path}", token))
            assert answer.status_code == 204, answer.text


@pytest.mark.parametrize("url", ["taskgate.example.com", "ftp://taskgate.example.com",
                                 "https://", "https://taskgate.example.com/?x=1"])
def test_a_public_url_that_is_no_base_url_is_refused(url, tmp_path):
    from taskgate.settings import Settings

    with pytest.raises(ValueError, match="public_url"):
        Settings(data_dir=tmp_path, public_url=url)


async def _set_binding(runtime: Runtime, dag_id: str, binding: str) -> None:
    from taskgate.services import control

    async with runtime.sessionmaker() as session:
        await control.add_dag(session, dag_id, token_binding=binding)


async def test_a_dag_that_requires_dpop_refuses_run_without_a_proof(http, factory, runtime):
    await _set_binding(runtime, "bound-only", "dpop")
    ti = await factory.queued_ti("bound-only")
    url = f"{http.base_url}/execution/task-instances/{ti.id}/run"
    refused = await http.patch(url, json=RUN_BODY, headers=bearer(ti.workload_token))
    assert refused.status_code == 401
    assert refused.headers["Taskgate-Reason"] == "dag_requires_dpop"
    assert refused.headers["WWW-Authenticate"].startswith("DPoP algs=")
    assert "Refreshed-API-Token" not in refused.headers
    # Refused before the workload token was spent: the worker starts it with a proof.
    key = ProofKey()
    started = await http.patch(url, json=RUN_BODY, headers={
        **bearer(ti.workload_token), "DPoP": key.proof("PATCH", url, ti.workload_token)})
    assert started.status_code == 200, started.text


async def test_the_server_default_applies_to_dags_without_a_binding_of_their_own(
    factory, settings, runtime
):
    strict = Runtime.from_settings(settings.model_copy(update={"token_binding": "dpop"}))
    await _set_binding(runtime, "explicitly-bearer", "bearer")
    with serving(create_app(strict), lifespan="on") as url:
        async with httpx.AsyncClient(base_url=url) as client:
            default = await factory.queued_ti("follows-the-server")
            answer = await client.patch(f"/execution/task-instances/{default.id}/run",
                                        json=RUN_BODY, headers=bearer(default.workload_token))
            assert answer.headers["Taskgate-Reason"] == "dag_requires_dpop"
            own = await factory.queued_ti("explicitly-bearer")
            answer = await client.patch(f"/execution/task-instances/{own.id}/run",
                                        json=RUN_BODY, headers=bearer(own.workload_token))
            assert answer.status_code == 200, answer.text


async def test_a_required_nonce_is_handed_out_and_then_checked(factory, settings, http):
    key = ProofKey()
    ti, token = await start_bound(http, factory, key)
    strict = Runtime.from_settings(settings.model_copy(update={"dpop_require_nonce": True}))
    with serving(create_app(strict), lifespan="on") as url:
        target = f"{url}/execution/task-instances/{ti.id}/heartbeat"
        async with httpx.AsyncClient() as client:
            refused = await client.put(target, json=BEAT_BODY, headers=key.headers("PUT", target, token))
            assert refused.status_code == 401
            assert refused.headers["Taskgate-Reason"] == "use_dpop_nonce"
            assert refused.headers["WWW-Authenticate"].startswith('DPoP error="use_dpop_nonce"')
            nonce = refused.headers["DPoP-Nonce"]
            accepted = await client.put(target, json=BEAT_BODY,
                                        headers=key.headers("PUT", target, token, nonce=nonce))
            assert accepted.status_code == 204, accepted.text
            assert accepted.headers["DPoP-Nonce"]  # every answer to a proof carries one
            wrong = await client.put(target, json=BEAT_BODY,
                                     headers=key.headers("PUT", target, token, nonce=nonce + "x"))
            assert wrong.headers.get("Taskgate-Reason") == "use_dpop_nonce", (wrong.status_code, wrong.text)
    # The first server requires none: a proof with or without one is accepted there.
    here = f"{http.base_url}/execution/task-instances/{ti.id}/heartbeat"
    assert (await http.put(here, json=BEAT_BODY, headers=key.headers("PUT", here, token))).status_code == 204
    assert "DPoP-Nonce" not in (await http.put(
        here, json=BEAT_BODY, headers=key.headers("PUT", here, token))).headers
