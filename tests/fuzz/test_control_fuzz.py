"""Schemathesis against the control API's OpenAPI document on a real server on 127.0.0.1,
with an admin key: no operation answers 5xx. Bounded: a few dozen examples per
operation."""

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import content_type_conformance

from taskgate.services import operators
from taskgate.services.operators import Role

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25


@pytest.fixture
def database_url():  # SQLite only: the fuzz targets the API surface, not the backend
    return None


def fuzz(base_url: str, key: str, known: dict[str, str]) -> dict[str, int]:
    schema = schemathesis.openapi.from_url(f"{base_url}/control/v1/openapi.json")
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case) -> None:
            for name, value in known.items():  # some cases reach existing rows
                if name in (case.path_parameters or {}) and len(calls) % 2:
                    case.path_parameters[name] = value
            response = case.call(base_url=f"{base_url}/control/v1",
                                 headers={"Authorization": f"Bearer {key}"}, timeout=10)
            calls[label] = calls.get(label, 0) + 1
            assert response.status_code < 500, (label, response.status_code, response.text[:300])
            case.validate_response(response, checks=[content_type_conformance])

        check()
    return calls


async def test_no_server_errors(live_server, factory, runtime):
    ti = await factory.queued_ti(dag_id="fuzz", task_id="t", run_id="r")
    async with runtime.sessionmaker() as session:
        admin = await operators.add_operator(session, "fuzzer", Role.ADMIN)
    known = {"ti_id": str(ti.id), "dag_id": "fuzz"}
    calls = await asyncio.to_thread(fuzz, live_server.url, admin.key, known)
    assert len(calls) >= 15  # every operation was exercised
    assert sum(calls.values()) >= 150
