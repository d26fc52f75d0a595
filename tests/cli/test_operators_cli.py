"""`taskgate operators` as a user runs it: the key printed once, then never again."""

import json

import pytest

from taskgate.services import operators
from tests.support.processes import run_cli, serve_env

pytestmark = pytest.mark.integration


async def test_add_list_revoke(settings, runtime) -> None:
    env = serve_env(settings)
    made = json.loads(run_cli(env, "operators", "add", "ci", "--role", "operator",
                              "--team", "etl", "--json").stdout)
    assert (made["name"], made["role"], made["teams"]) == ("ci", "operator", ["etl"])
    async with runtime.sessionmaker() as session:
        assert (await operators.authenticate(session, made["key"])) is not None

    listed = run_cli(env, "operators", "list", "--json").stdout
    assert made["key"] not in listed and made["key"].split("_", 2)[2] not in listed
    assert [(o["name"], o["revoked_at"]) for o in json.loads(listed)] == [("ci", None)]

    refused = run_cli(env, "operators", "add", "ci", "--role", "admin", check=False)
    assert refused.returncode == 1 and "already exists" in refused.stderr

    run_cli(env, "operators", "revoke", "ci")
    async with runtime.sessionmaker() as session:
        assert (await operators.authenticate(session, made["key"])) is None
    assert json.loads(run_cli(env, "operators", "list", "--json").stdout)[0]["revoked_at"]
