"""The client's DPoP key (RFC 9449) against a real server on 127.0.0.1: ``run`` binds the
execution token to the client's in-memory key and every later call proves it; the bound
token is refused without that key; a retry signs a new proof; threads share one key; the
private key shows up in no ``repr``, pickle or log record. In-process mode runs the same
checks."""

from __future__ import annotations

import copy
import logging
import pickle
import threading

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from sqlalchemy import func, select

from taskgate.client import Client, DPoPKey, NotFound, TokenRejected
from taskgate.client.errors import ApiError
from taskgate.client.in_process import IN_PROCESS_URL, InProcessServer, in_process_client
from taskgate.db.models import DPoPProofUse
from taskgate.runtime import Runtime
from taskgate.services import control, variables
from taskgate.tokens.keys import b64url
from tests.support.database import fresh_ti

pytestmark = pytest.mark.integration  # a live server

HOST = {"hostname": "worker-1", "pid": 4242}


def private_value(key: DPoPKey) -> str:
    """The private key as a JWK's ``d`` would show it (what must never leak)."""
    raw = key._DPoPKey__private.private_bytes(  # type: ignore[attr-defined]
        Encoding.Raw, PrivateFormat.Raw, NoEncryption()
    )
    return b64url(raw)


class Recording(httpx.BaseTransport):
    """The network, recording every request; ``drop_answers`` answers are read from the
    server and then lost (the request did arrive: its proof is spent)."""

    def __init__(self, drop_answers: int = 0) -> None:
        self._network = httpx.HTTPTransport()
        self.sent: list[httpx.Request] = []
        self.drop_answers = drop_answers
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append(request)
        response = self._network.handle_request(request)
        with self._lock:
            drop, self.drop_answers = self.drop_answers > 0, max(0, self.drop_answers - 1)
        if drop:
            response.read()
            response.close()
            raise httpx.ReadError("answer lost", request=request)
        return response

    def close(self) -> None:
        self._network.close()


def proof_claims(request: httpx.Request) -> dict:
    return jwt.decode(request.headers["DPoP"], options={"verify_signature": False})


async def proof_uses(runtime: Runtime) -> int:
    async with runtime.sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(DPoPProofUse))


async def test_a_dpop_client_runs_a_task_on_a_bound_token(live_server, runtime, factory, caplog):
    caplog.set_level(logging.DEBUG)
    ti = await factory.queued_ti()
    async with runtime.sessionmaker() as session:
        await variables.put(session, runtime.secrets, "greeting", "hello")
    recording = Recording()
    with Client(f"{live_server.url}/execution", token=ti.workload_token,
                transport=recording) as api:
        key = api.dpop_key
        assert key is not None
        api.run(ti.id, unixname="tester", **HOST)
        assert runtime.validator.validate(api.token).jkt == key.thumbprint
        api.heartbeat(ti.id, **HOST)
        assert api.get_variable("greeting").value == "hello"
        api.push_xcom(ti.dag_id, ti.run_id, ti.task_id, "rows", {"n": 3})
        api.finish(ti.id, "success")
        shown = repr(api), repr(key)

    run, *later = recording.sent
    assert run.headers["Authorization"].startswith("Bearer ")  # the workload token: unbound
    assert all(r.headers["Authorization"].startswith("DPoP ") for r in later)
    claims = [proof_claims(r) for r in recording.sent]
    assert [(c["htm"], c["htu"]) for c in claims] == [
        (r.method, str(r.url.copy_with(query=None))) for r in recording.sent]
    assert len({c["jti"] for c in claims}) == len(claims)
    assert await proof_uses(runtime) == len(claims)  # each proof checked and recorded
    assert (await fresh_ti(runtime, ti.id)).state == "success"

    secret = private_value(key)
    assert shown == (f"Client('{live_server.url}/execution/', dpop={key.thumbprint})",
                     f"DPoPKey(thumbprint={key.thumbprint!r})")
    assert all(secret not in text for text in shown)
    assert all("d" not in jwt.get_unverified_header(r.headers["DPoP"])["jwk"]
               for r in recording.sent)
    assert caplog.records  # the server's and the client's DEBUG records were captured
    for record in caplog.records:
        assert secret not in record.getMessage() and secret not in repr(record.__dict__)


async def test_without_dpop_the_token_is_a_bearer_token(live_server, runtime, factory):
    ti = await factory.queued_ti()
    recording = Recording()
    with Client(f"{live_server.url}/execution", token=ti.workload_token, dpop=False,
                transport=recording) as api:
        assert api.dpop_key is None
        api.run(ti.id, unixname="tester", **HOST)
        assert runtime.validator.validate(api.token).jkt is None
        api.heartbeat(ti.id, **HOST)
        api.finish(ti.id, "success")
    assert all("DPoP" not in r.headers for r in recording.sent)
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in recording.sent)
    assert await proof_uses(runtime) == 0


@pytest.mark.parametrize(("thief", "reason"), [
    ({"dpop": False}, "missing_dpop_proof"),  # the token alone, as a log line would leak it
    ({"dpop": True}, "key_mismatch"),  # with a key of the thief's own
])
async def test_a_bound_token_is_refused_without_its_key(live_server, factory, thief, reason):
    ti = await factory.queued_ti()
    url = f"{live_server.url}/execution"
    with Client(url, token=ti.workload_token) as owner:
        owner.run(ti.id, unixname="tester", **HOST)
        with Client(url, token=owner.token, **thief) as stolen:
            for call in (
                lambda: stolen.heartbeat(ti.id, **HOST),
                lambda: stolen.get_variable("anything"),
                lambda: stolen.push_xcom(ti.dag_id, ti.run_id, ti.task_id, "k", 1),
            ):
                with pytest.raises(TokenRejected) as refused:
                    call()
                assert (refused.value.status, refused.value.reason) == (401, reason)
        # The holder of the key is not disturbed by any of it.
        owner.heartbeat(ti.id, **HOST)
        owner.finish(ti.id, "success")


async def test_a_retry_signs_a_new_proof(live_server, factory):
    ti = await factory.queued_ti()
    recording = Recording()
    with Client(f"{live_server.url}/execution", token=ti.workload_token,
                transport=recording) as api:
        api.run(ti.id, unixname="tester", **HOST)
        recording.drop_answers = 1  # the first heartbeat arrives; its answer is lost
        api.heartbeat(ti.id, **HOST)  # retried, and accepted
        first, retry = recording.sent[1:]
        assert first.headers["correlation-id"] == retry.headers["correlation-id"]
        assert proof_claims(first)["jti"] != proof_claims(retry)["jti"]
        # The first proof was spent when it arrived: sending it again is refused.
        async with httpx.AsyncClient() as http:
            again = await http.put(str(first.url), content=first.content, headers=first.headers)
        assert again.status_code == 401 and again.headers["Taskgate-Reason"] == "proof_replayed"
        api.finish(ti.id, "success")


async def test_threads_share_one_key(live_server, factory):
    ti = await factory.queued_ti()
    recording = Recording()
    failures: list[ApiError] = []
    with Client(f"{live_server.url}/execution", token=ti.workload_token,
                transport=recording) as api:
        api.run(ti.id, unixname="tester", **HOST)

        def beat() -> None:
            for _ in range(5):
                try:
                    api.heartbeat(ti.id, **HOST)
                except ApiError as exc:
                    failures.append(exc)

        threads = [threading.Thread(target=beat) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not failures
        api.finish(ti.id, "success")
    jtis = [proof_claims(r)["jti"] for r in recording.sent]
    assert len(jtis) == 22 and len(set(jtis)) == 22


def test_the_private_key_stays_in_its_object():
    key = DPoPKey()
    for leak in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError):
            leak(key)
    assert private_value(key) not in repr(key)
    assert key.jwk.keys() == {"kty", "crv", "x"}
    with Client("http://127.0.0.1:1/execution", dpop=key) as one, \
            Client("http://127.0.0.1:1/execution", dpop=key) as two:
        assert one.dpop_key is two.dpop_key is key  # shared, never copied
    assert DPoPKey().thumbprint != key.thumbprint  # a fresh key each time


async def test_in_process_mode_checks_the_same_proofs(runtime, factory, settings):
    # The DAG accepts only key-bound tokens: /run without a proof would be refused.
    async with runtime.sessionmaker() as session:
        await control.add_dag(session, "dag", token_binding="dpop")
    first, second = await factory.queued_ti(), await factory.queued_ti()

    async with in_process_client(runtime, token=first.workload_token) as api:
        await api.run(first.id, unixname="tester", **HOST)
        assert runtime.validator.validate(api.token).jkt == api.dpop_key.thumbprint
        await api.heartbeat(first.id, **HOST)
        await api.finish(first.id, "success")

    with InProcessServer(Runtime.from_settings(settings)) as server:
        with server.client(token=second.workload_token, dpop=False) as bearer_only:
            with pytest.raises(TokenRejected) as refused:
                bearer_only.run(second.id, unixname="tester", **HOST)
            assert refused.value.reason == "dag_requires_dpop"
        with server.client(token=second.workload_token) as api:
            assert api.base_url == f"{IN_PROCESS_URL}/"
            api.run(second.id, unixname="tester", **HOST)
            assert server.runtime.validator.validate(api.token).jkt == api.dpop_key.thumbprint
            api.heartbeat(second.id, **HOST)
            api.push_xcom(second.dag_id, second.run_id, second.task_id, "rows", 1)
            with server.client(token=api.token, dpop=False) as stolen, \
                    pytest.raises(TokenRejected) as refused:
                stolen.heartbeat(second.id, **HOST)
            assert refused.value.reason == "missing_dpop_proof"
            api.finish(second.id, "success")


async def test_a_key_that_needs_escaping(runtime, factory):
    ti = await factory.queued_ti()
    async with in_process_client(runtime, token=ti.workload_token) as api:
        await api.run(ti.id, unixname="tester", **HOST)
        with pytest.raises(NotFound):
            await api.get_variable("needs escaping")


async def test_the_client_takes_up_the_servers_nonce_and_keeps_the_newest(settings, runtime, factory):
    from taskgate.api.app import create_app
    from tests.support.asgi_server import serving

    strict = Runtime.from_settings(settings.model_copy(update={"dpop_require_nonce": True}))
    ti = await factory.queued_ti()
    recording = Recording()
    with serving(create_app(strict), lifespan="on") as url, \
            Client(f"{url}/execution", token=ti.workload_token, transport=recording) as api:
        api.run(ti.id, unixname="tester", **HOST)
        api.heartbeat(ti.id, **HOST)
        api.finish(ti.id, "success")
    # The first proof had no nonce: refused with one, and the call went again at once with
    # it; every later proof carried the server's nonce from the start.
    claims = [proof_claims(r) for r in recording.sent]
    assert [c["htm"] for c in claims] == ["PATCH", "PATCH", "PUT", "PATCH"]
    assert "nonce" not in claims[0]
    assert all(c["nonce"] for c in claims[1:])


async def test_a_bound_worker_heartbeats_on_re_issued_tokens_past_the_token_lifetime(
    settings, runtime, factory
):
    # Execution tokens live 3 s (no leeway): every answer re-issues one, bound to the same
    # key; heartbeats go on for twice that lifetime on the successors.
    import time

    from taskgate.api.app import create_app
    from tests.support.asgi_server import serving

    short = Runtime.from_settings(
        settings.model_copy(update={"execution_token_ttl": 3, "leeway": 0}))
    ti = await factory.queued_ti()
    with serving(create_app(short), lifespan="on") as url, \
            Client(f"{url}/execution", token=ti.workload_token) as api:
        api.run(ti.id, unixname="tester", **HOST)
        first = api.token
        tokens = {first}
        until = time.monotonic() + 6
        while time.monotonic() < until:
            api.heartbeat(ti.id, **HOST)
            tokens.add(api.token)
            time.sleep(0.5)
        api.finish(ti.id, "success")
    assert len(tokens) > 3  # re-issued along the way
    jkts = {jwt.decode(t, options={"verify_signature": False})["cnf"]["jkt"] for t in tokens}
    assert jkts == {api.dpop_key.thumbprint}
