"""OIDC access tokens on the control API, against a real identity provider: real RSA and EC
keys, its JWKS over HTTP on 127.0.0.1, tokens signed with PyJWT. Every refusal is checked
for its status and the reason an operator reads."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from taskgate.api.app import create_app
from taskgate.runtime import Runtime
from taskgate.security.oidc import JwksCache, OidcRefusal, OidcVerifier
from taskgate.services.operators import Role
from taskgate.settings import Settings
from taskgate.tokens import keys as keylib
from tests.support import identity_provider
from tests.support.api import bearer
from tests.support.identity_provider import IdentityProvider, new_private_key

DAGS = "/control/v1/dags"
TIS = "/control/v1/task-instances"


@pytest.fixture
def database_url():  # SQLite only: who the caller is does not depend on the backend
    return None


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.add_key("rsa")
    with identity_provider.serving(provider):
        yield provider


@pytest.fixture
def settings(data_dir: Path, database_url: str | None, idp: IdentityProvider) -> Settings:
    # taskgate signs its task tokens with RSA here, the IdP's algorithm, so that only the
    # key, the issuer and the audience tell a task token from an access token.
    keylib.write_private_key(
        data_dir / "signing-key.pem", keylib.generate_private_key(keylib.KeyType.RSA)
    )
    return Settings(
        data_dir=data_dir,
        database_url=database_url,
        control_oidc_issuer=idp.issuer,
        control_oidc_audience=idp.audience,
        control_oidc_jwks_url=idp.jwks_url,
    )


def refusal(answer: httpx.Response) -> tuple[int, str]:
    return answer.status_code, answer.json()["detail"]["reason"]


async def dag_with_a_run(client: httpx.AsyncClient, admin: dict[str, str], dag: str,
                         team: str | None = None) -> str:
    """Register ``dag`` with an operator key and create a run; the id of its one TI."""
    assert (await client.put(f"{DAGS}/{dag}", json={"team": team}, headers=admin)).status_code == 200
    run = await client.post(f"{DAGS}/{dag}/runs", json={"run_id": "r1", "tasks": ["t"]},
                            headers=admin)
    assert run.status_code == 201, run.text
    return str(run.json()["task_instances"][0]["id"])


# -- accepted ------------------------------------------------------------------------------


async def test_an_operator_token_creates_runs_queues_and_reads(client, idp, operator_key) -> None:
    await dag_with_a_run(client, await operator_key(Role.ADMIN), "etl")
    token = bearer(idp.token(taskgate_role="operator", sub="scheduler-client"))

    run = await client.post(f"{DAGS}/etl/runs", json={"run_id": "r2", "tasks": ["extract"]},
                            headers=token)
    assert run.status_code == 201, run.text
    ti_id = run.json()["task_instances"][0]["id"]
    queued = await client.post(f"{TIS}/{ti_id}/queue", json={"format": "taskgate"}, headers=token)
    assert queued.status_code == 200, queued.text
    assert queued.json()["token"] and queued.json()["ti"]["state"] == "queued"
    read = await client.get(f"{TIS}/{ti_id}", headers=token)
    assert (read.status_code, read.json()["state"]) == (200, "queued")
    assert idp.jwks_requests == 1  # one fetch served every request

    # The principal is named after the token's name claim.
    admin_only = await client.put(f"{DAGS}/other", json={"team": None}, headers=token)
    assert refusal(admin_only) == (403, "role_required")
    assert "operator oidc:scheduler-client has operator" in admin_only.json()["detail"]["message"]


async def test_an_ec_key_of_the_idp_is_accepted(client, idp) -> None:
    idp.add_key("ec")
    answer = await client.get(DAGS, headers=bearer(idp.token(taskgate_role="reader")))
    assert answer.status_code == 200, answer.text


async def test_a_role_list_counts_for_its_highest_role(client, idp) -> None:
    token = idp.token(taskgate_role=["reader", "some-other-app-role", "admin"])
    answer = await client.put(f"{DAGS}/d", json={"team": None}, headers=bearer(token))
    assert answer.status_code == 200, answer.text


async def test_an_oidc_session_ends_no_later_than_its_token(client, idp) -> None:
    token = idp.token(idp.claims(lifetime=120, taskgate_role="reader", taskgate_teams=["blue"],
                                 sub="alice"))
    answer = await client.post("/control/v1/sessions", headers=bearer(token))
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["name"], body["role"], body["teams"]) == ("oidc:alice", "reader", ["blue"])
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    assert datetime.fromisoformat(body["expires_at"]).timestamp() <= exp
    max_age = int(answer.headers["set-cookie"].lower().split("max-age=")[1].split(";")[0])
    assert 100 <= max_age <= 120
    # The cookie carries the token's identity; the IdP is not asked again.
    fetched = idp.jwks_requests
    assert (await client.get(DAGS)).status_code == 200
    assert idp.jwks_requests == fetched


# -- roles and teams, exactly as for keys --------------------------------------------------


async def test_a_reader_token_is_refused_a_write(client, idp, operator_key) -> None:
    ti_id = await dag_with_a_run(client, await operator_key(Role.ADMIN), "etl")
    reader = bearer(idp.token(taskgate_role="reader"))
    assert (await client.get(f"{TIS}/{ti_id}", headers=reader)).status_code == 200
    for method, path in (("POST", f"{DAGS}/etl/runs"), ("POST", f"{TIS}/{ti_id}/queue"),
                         ("POST", f"{TIS}/{ti_id}/revoke-tokens")):
        answer = await client.request(method, path, headers=reader,
                                      json={"run_id": "r2", "tasks": ["t"]})
        assert refusal(answer) == (403, "role_required")
        message = answer.json()["detail"]["message"]
        assert "needs role operator" in message and "oidc:orchestrator has reader" in message


@pytest.mark.parametrize("claim", [["etl"], "etl", "etl, finance", "finance etl"])
async def test_the_teams_claim_scopes_the_operator(client, idp, operator_key, claim) -> None:
    admin = await operator_key(Role.ADMIN)
    await dag_with_a_run(client, admin, "etl_dag", "etl")
    ml_ti = await dag_with_a_run(client, admin, "ml_dag", "ml")
    token = bearer(idp.token(taskgate_role="operator", taskgate_teams=claim))

    assert [d["dag_id"] for d in (await client.get(DAGS, headers=token)).json()] == ["etl_dag"]
    assert {ti["dag_id"] for ti in (await client.get(TIS, headers=token)).json()} == {"etl_dag"}
    other = await client.post(f"{DAGS}/ml_dag/runs", json={"run_id": "r2", "tasks": ["t"]},
                              headers=token)
    assert refusal(other) == (403, "team_required")
    assert "team ml" in other.json()["detail"]["message"]
    for method, suffix in (("GET", ""), ("POST", "/queue"), ("POST", "/revoke-tokens")):
        answer = await client.request(method, f"{TIS}/{ml_ti}{suffix}", headers=token)
        assert refusal(answer) == (403, "team_required")
    own = await client.post(f"{DAGS}/etl_dag/runs", json={"run_id": "r2", "tasks": ["t"]},
                            headers=token)
    assert own.status_code == 201


@pytest.mark.parametrize("role", [None, "root", ["superuser"], 3])
async def test_a_token_without_a_known_role_is_403_naming_the_claim(client, idp, role) -> None:
    token = idp.token(without=("taskgate_role",)) if role is None else idp.token(taskgate_role=role)
    answer = await client.get(DAGS, headers=bearer(token))
    assert refusal(answer) == (403, "role_required")
    assert "'taskgate_role'" in answer.json()["detail"]["message"]


async def test_a_malformed_teams_claim_is_403(client, idp) -> None:
    answer = await client.get(DAGS, headers=bearer(idp.token(taskgate_teams=[1, 2])))
    assert refusal(answer) == (403, "teams_invalid")
    # A missing claim is refused too, rather than taken for every team.
    missing = await client.get(DAGS, headers=bearer(idp.token(without=("taskgate_teams",))))
    assert refusal(missing) == (403, "teams_invalid")
    assert "is missing" in missing.json()["detail"]["message"]
    every = await client.get(DAGS, headers=bearer(idp.token(taskgate_teams="")))
    assert every.status_code == 200
    assert "'taskgate_teams'" in answer.json()["detail"]["message"]


async def test_the_claim_names_are_configurable(idp) -> None:
    verifier = OidcVerifier(
        JwksCache(idp.jwks_url), issuer=idp.issuer, audience=idp.audience,
        algorithms=["RS256"], role_claim="https://taskgate.example/role",
        teams_claim="groups", name_claim="client_id", leeway=5,
    )
    token = idp.token(**{"https://taskgate.example/role": "admin", "groups": "etl,ml",
                         "client_id": "ci-runner"})
    identity = await verifier.verify(token)
    assert (identity.name, identity.role, identity.teams) == (
        "oidc:ci-runner", Role.ADMIN, frozenset({"etl", "ml"})
    )
    with pytest.raises(OidcRefusal) as refused:
        await verifier.verify(idp.token(**{"https://taskgate.example/role": "admin"}))
    assert (refused.value.status, refused.value.reason) == (401, "oidc_invalid")
    assert "'client_id'" in refused.value.message


# -- refused tokens: 401 with the reason ---------------------------------------------------


def assert_refused(answer: httpx.Response, reason: str) -> None:
    assert refusal(answer) == (401, reason), answer.text
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="taskgate-control", error="invalid_token"'


@pytest.mark.parametrize(
    ("claims", "reason", "said"),
    [
        ({"aud": "urn:some-other-api"}, "oidc_wrong_audience", "urn:taskgate:control"),
        ({"aud": ["urn:a", "urn:b"]}, "oidc_wrong_audience", "urn:taskgate:control"),
        ({"iss": "https://evil.example.test"}, "oidc_wrong_issuer", identity_provider.ISSUER),
        ({"exp": -60}, "oidc_expired", "expired"),  # times: seconds from now
        ({"nbf": 600}, "oidc_not_yet_valid", "not valid yet"),
    ],
)
async def test_a_token_with_wrong_claims_is_401(client, idp, claims, reason, said) -> None:
    now = int(time.time())
    claims = {k: now + v if k in ("exp", "nbf") else v for k, v in claims.items()}
    answer = await client.get(DAGS, headers=bearer(idp.token(**claims)))
    assert_refused(answer, reason)
    assert said in answer.json()["detail"]["message"]


@pytest.mark.parametrize("claim", ["exp", "aud", "iss"])
async def test_a_token_missing_a_required_claim_is_401(client, idp, claim) -> None:
    answer = await client.get(DAGS, headers=bearer(idp.token(without=(claim,))))
    assert_refused(answer, "oidc_invalid")
    assert f"no '{claim}' claim" in answer.json()["detail"]["message"]


async def test_a_forged_signature_is_401(client, idp) -> None:
    # The IdP's kid, but signed with another key.
    forged = idp.token(key=new_private_key("rsa"))
    assert_refused(await client.get(DAGS, headers=bearer(forged)), "oidc_bad_signature")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_the_public_key(idp: IdentityProvider) -> str:
    """The algorithm-confusion forgery: HMAC keyed with the IdP's public key (PEM)."""
    public_pem = idp.keys[idp.kid].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": idp.kid}).encode())
    payload = _b64(json.dumps(idp.claims(taskgate_role="admin")).encode())
    signature = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


async def test_alg_none_and_hs256_with_the_public_key_are_401(client, idp) -> None:
    unsigned = jwt.encode(idp.claims(taskgate_role="admin"), None, algorithm="none",
                          headers={"kid": idp.kid})
    for token in (unsigned, hs256_with_the_public_key(idp)):
        answer = await client.get(DAGS, headers=bearer(token))
        assert_refused(answer, "oidc_algorithm_not_allowed")
    assert idp.jwks_requests == 0  # refused before any key was looked up


async def test_an_unknown_kid_is_401_and_costs_at_most_one_more_fetch(client, idp) -> None:
    assert (await client.get(DAGS, headers=bearer(idp.token()))).status_code == 200
    assert idp.jwks_requests == 1
    for _ in range(5):  # an attacker's made-up kids
        token = idp.token(kid=f"made-up-{uuid.uuid4().hex}", key=new_private_key("rsa"))
        answer = await client.get(DAGS, headers=bearer(token))
        assert_refused(answer, "oidc_unknown_key")
        assert "made-up-" in answer.json()["detail"]["message"]
    assert idp.jwks_requests == 2


async def test_a_weak_rsa_key_in_the_jwks_is_never_used(client, idp) -> None:
    weak = idp.add_key(private_key=rsa.generate_private_key(public_exponent=65537, key_size=1024))
    with warnings.catch_warnings():  # PyJWT's warning that the key is too short: it is
        warnings.simplefilter("ignore")
        token = idp.token(kid=weak)
    assert_refused(await client.get(DAGS, headers=bearer(token)), "oidc_unknown_key")


@pytest.mark.parametrize("credential", ["not-a-jwt", "a.b.c", "tgx_" + "0" * 40, "x" * 20000])
async def test_garbage_is_401_not_500(client, idp, credential) -> None:
    assert_refused(await client.get(DAGS, headers=bearer(credential)), "oidc_invalid")


async def test_a_task_token_is_refused(client, idp, factory) -> None:
    ti = await factory.queued_ti()
    for token in (ti.workload_token, factory.token(ti.id)):
        assert jwt.get_unverified_header(token)["alg"] == "RS256"  # the IdP's algorithm
        answer = await client.get(DAGS, headers=bearer(token))
        assert_refused(answer, "oidc_unknown_key")


async def test_an_operator_key_still_works_and_a_bad_one_is_still_invalid_key(
    client, idp, operator_key
) -> None:
    headers = await operator_key(Role.READER)
    assert (await client.get(DAGS, headers=headers)).status_code == 200
    forged = {"Authorization": headers["Authorization"][:-3] + "abc"}
    assert_refused(await client.get(DAGS, headers=forged), "invalid_key")
    assert idp.jwks_requests == 0  # keys never reach the IdP


# -- the JWKS: rotation, outages -----------------------------------------------------------


async def test_a_new_key_of_the_idp_is_fetched_and_a_withdrawn_one_refused(client, idp) -> None:
    old_kid = idp.kid
    old_token = idp.token()
    assert (await client.get(DAGS, headers=bearer(old_token))).status_code == 200
    new_kid = idp.add_key("rsa")  # rotation: the IdP signs with a new key ...
    idp.withdraw(old_kid)  # ... and withdraws the old one
    answer = await client.get(DAGS, headers=bearer(idp.token(kid=new_kid)))
    assert answer.status_code == 200, answer.text
    assert idp.jwks_requests == 2
    assert_refused(await client.get(DAGS, headers=bearer(old_token)), "oidc_unknown_key")
    assert idp.jwks_requests == 2  # the early fetch is spent: no third one


@pytest.mark.parametrize(
    ("mode", "said"),
    [
        ("down", "ConnectError"),
        ("hang", "no answer within 2 s"),
        ("error", "answered HTTP 500"),
        ("garbage", "not JSON"),
    ],
)
async def test_an_unreachable_jwks_is_503_with_the_reason_never_a_hang(
    client, idp, operator_key, mode, said
) -> None:
    if mode == "down":
        idp.go_down()
    else:
        idp.mode = mode
    start = time.monotonic()
    answer = await client.get(DAGS, headers=bearer(idp.token()))
    waited = time.monotonic() - start
    # Answered within the request deadline (1.5 s), so never as a 503 database_timeout.
    assert waited < 1.4
    assert refusal(answer) == (503, "oidc_unavailable")
    message = answer.json()["detail"]["message"]
    assert idp.jwks_url in message
    if mode == "hang":
        assert "no answer yet after 0.75 s (still trying)" in message
        assert answer.headers["Retry-After"] == "1"
        await asyncio.sleep(2.5 - waited)  # the fetch itself gives up at 2 s
    else:
        assert said in message and answer.headers["Retry-After"] == "5"
    asked = idp.jwks_requests
    assert asked == (0 if mode == "down" else 1)

    # Then requests are answered at once with the reason, without asking the IdP again.
    start = time.monotonic()
    again = await client.get(DAGS, headers=bearer(idp.token()))
    assert time.monotonic() - start < 0.5
    assert refusal(again) == (503, "oidc_unavailable")
    assert said in again.json()["detail"]["message"] and idp.jwks_requests == asked
    # Operator keys do not depend on the IdP.
    assert (await client.get(DAGS, headers=await operator_key(Role.READER))).status_code == 200


async def test_a_slow_jwks_answer_serves_the_next_requests(client, idp) -> None:
    idp.delay = 1.2  # more than a request may wait (0.75 s), less than the fetch's 2 s
    answer = await client.get(DAGS, headers=bearer(idp.token()))
    assert refusal(answer) == (503, "oidc_unavailable")
    await asyncio.sleep(1.0)  # the fetch goes on without the request that started it
    assert (await client.get(DAGS, headers=bearer(idp.token()))).status_code == 200
    assert idp.jwks_requests == 1


async def test_the_jwks_is_fetched_again_once_the_idp_is_back(idp) -> None:
    now = [0.0]
    cache = JwksCache(idp.jwks_url, clock=lambda: now[0])
    idp.mode = "error"
    with pytest.raises(OidcRefusal) as refused:
        await cache.key(idp.kid)
    assert refused.value.status == 503
    idp.mode = "ok"
    now[0] += 5  # the back-off has passed
    assert (await cache.key(idp.kid)).key_id == idp.kid
    now[0] += 299  # within the cache time: no fetch
    await cache.key(idp.kid)
    assert idp.jwks_requests == 2
    now[0] += 1  # the cache time is up: fetched again
    await cache.key(idp.kid)
    assert idp.jwks_requests == 3


# -- configuration -------------------------------------------------------------------------


@asynccontextmanager
async def plain_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    runtime = Runtime.from_settings(settings)
    await runtime.prepare_database()
    try:
        transport = httpx.ASGITransport(app=create_app(runtime))
        async with httpx.AsyncClient(transport=transport, base_url="http://taskgate") as client:
            yield client
    finally:
        await runtime.aclose()


async def test_without_oidc_an_idp_token_is_an_invalid_key(tmp_path, database_url, idp) -> None:
    async with plain_client(Settings(data_dir=tmp_path / "plain", database_url=database_url)) as c:
        answer = await c.get(DAGS, headers=bearer(idp.token(taskgate_role="admin")))
    assert refusal(answer) == (401, "invalid_key")
    assert idp.jwks_requests == 0


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"control_oidc_issuer": "https://idp"}, "TASKGATE_CONTROL_OIDC_AUDIENCE"),
        ({"control_oidc_issuer": "https://idp", "control_oidc_audience": "a"},
         "TASKGATE_CONTROL_OIDC_JWKS_URL"),
        ({"control_oidc_audience": "a", "control_oidc_jwks_url": "https://idp/jwks"},
         "TASKGATE_CONTROL_OIDC_ISSUER"),
        ({"control_oidc_issuer": "https://idp", "control_oidc_audience": "a",
          "control_oidc_jwks_url": "/etc/jwks.json"}, "http(s) URL"),
        ({"control_oidc_algorithms": "RS256,none"}, "none not accepted"),
        ({"control_oidc_algorithms": "HS256"}, "HS256 not accepted"),
    ],
)
def test_a_half_or_unsafe_oidc_configuration_is_refused_at_load(tmp_path, given, named) -> None:
    with pytest.raises(ValueError, match=named.replace("(", r"\(").replace(")", r"\)")):
        Settings(data_dir=tmp_path, **given)


def test_the_oidc_settings_from_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TASKGATE_CONTROL_OIDC_ISSUER", "https://idp")
    monkeypatch.setenv("TASKGATE_CONTROL_OIDC_AUDIENCE", "urn:taskgate:control")
    monkeypatch.setenv("TASKGATE_CONTROL_OIDC_JWKS_URL", "https://idp/jwks")
    monkeypatch.setenv("TASKGATE_CONTROL_OIDC_ALGORITHMS", " ES256 , PS256 ")
    settings = Settings(data_dir=tmp_path)
    assert settings.control_oidc_enabled
    assert settings.control_oidc_algorithms == "ES256,PS256"
    assert (settings.control_oidc_role_claim, settings.control_oidc_teams_claim,
            settings.control_oidc_name_claim) == ("taskgate_role", "taskgate_teams", "sub")
