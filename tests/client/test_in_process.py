"""In-process mode keeps authentication on: a forged or foreign-TI token is refused exactly
as a real server on 127.0.0.1 refuses it, through the async transport and the sync bridge."""

import threading
import time

import jwt
import pytest

from taskgate.client import Client, TokenRejected
from taskgate.client.errors import ApiError
from taskgate.client.in_process import InProcessServer, in_process_client
from taskgate.runtime import Runtime
from taskgate.settings import Settings
from taskgate.tokens import TokenIssuer, TokenType
from taskgate.tokens import keys as keylib

pytestmark = pytest.mark.integration  # compares with a live server

HOST = {"hostname": "worker-1", "pid": 4242}


def bad_tokens(runtime, factory, ti, other) -> dict[str, str]:
    stranger = keylib.signing_key_from_private(keylib.generate_private_key(keylib.KeyType.ED25519))
    # A forgery that claims our key: good claims, the stranger's signature, our kid.
    claims = jwt.decode(factory.token(ti.id), options={"verify_signature": False})
    forged = jwt.encode(
        claims, stranger.key, algorithm=stranger.algorithm, headers={"kid": runtime.keys.signing.kid}
    )
    expired = TokenIssuer(
        runtime.keys.signing, audience=runtime.settings.audience, clock=lambda: time.time() - 3600
    )
    return {
        "forged": forged,
        "foreign key": TokenIssuer(stranger, audience=runtime.settings.audience).issue(ti.id),
        "expired": expired.issue(ti.id),
        "foreign TI": factory.token(other.id),
        "workload": factory.token(ti.id, TokenType.WORKLOAD),
        "wrong audience": TokenIssuer(runtime.keys.signing, audience="urn:other").issue(ti.id),
    }


def outcome(call) -> tuple:
    try:
        call()
    except ApiError as exc:
        return type(exc).__name__, exc.status, exc.reason
    return ("accepted",)


async def test_refusals_match_a_real_server(live_server, runtime, factory, settings):
    ti, other = await factory.queued_ti(task_id="a"), await factory.queued_ti(task_id="b")
    tokens = bad_tokens(runtime, factory, ti, other)

    def sync_outcomes(api: Client) -> dict[str, tuple]:
        results = {}
        for name, token in tokens.items():
            api.token = token
            results[name] = outcome(lambda: api.heartbeat(ti.id, **HOST))
        api.token = None
        results["none"] = outcome(lambda: api.heartbeat(ti.id, **HOST))
        return results

    with Client(f"{live_server.url}/execution") as api:
        over_http = sync_outcomes(api)
    async with in_process_client(runtime) as api:
        in_process_async = {}
        for name, token in [*tokens.items(), ("none", None)]:
            api.token = token
            try:
                await api.heartbeat(ti.id, **HOST)
                in_process_async[name] = ("accepted",)
            except ApiError as exc:
                in_process_async[name] = (type(exc).__name__, exc.status, exc.reason)
    with InProcessServer(Runtime.from_settings(settings)) as server, server.client() as api:
        in_process_sync = sync_outcomes(api)

    assert over_http == in_process_async == in_process_sync
    assert over_http["forged"] == ("TokenRejected", 403, "bad_signature")
    assert over_http["foreign TI"] == ("TokenRejected", 403, "subject_mismatch")
    assert over_http["none"] == ("TokenRejected", 401, "missing_token")
    assert all(result[0] == "TokenRejected" for result in over_http.values())


@pytest.fixture
def settings(data_dir, database_url):
    return Settings(data_dir=data_dir, database_url=database_url, execution_token_ttl=30)


async def test_sync_bridge_shares_fresh_tokens_between_threads(runtime, factory, settings):
    ti = await factory.queued_ti()
    failures: list[Exception] = []
    with InProcessServer(Runtime.from_settings(settings)) as server:
        with server.client(token=ti.workload_token) as api:
            api.run(ti.id, unixname="tester", **HOST)

            def beat() -> None:
                for _ in range(10):
                    try:
                        api.heartbeat(ti.id, **HOST)
                    except ApiError as exc:
                        failures.append(exc)

            threads = [threading.Thread(target=beat) for _ in range(3)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not failures
            assert api.token_refreshes >= 10  # every answer carried a fresh token
            api.finish(ti.id, "success")
            with pytest.raises(TokenRejected):
                api.get_variable("x")
        minted = server.mint(ti.id)
        with server.client(token=minted) as late, pytest.raises(TokenRejected) as ended:
            late.get_variable("x")
        assert ended.value.reason == "ti_ended"
