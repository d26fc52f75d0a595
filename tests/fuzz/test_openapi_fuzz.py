"""Schemathesis against the live OpenAPI document of a real server on 127.0.0.1, with a
valid execution token: no operation answers 5xx, and every answer matches its documented
schema. Bounded: a few dozen examples per operation."""

import asyncio

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.support.api import bearer

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 25


@pytest.fixture
def database_url():  # SQLite only: the fuzz targets the API surface, not the backend
    return None


def fuzz(base_url: str, ti_id: str, token: str) -> dict[str, int]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case) -> None:
            if "task_instance_id" in (case.path_parameters or {}):
                case.path_parameters["task_instance_id"] = ti_id  # past the subject binding
            response = case.call(base_url=base_url, headers=bearer(token), timeout=10)
            calls[label] = calls.get(label, 0) + 1
            assert response.status_code < 500, (label, response.status_code, response.text[:300])
            case.validate_response(
                response, checks=[response_schema_conformance, content_type_conformance]
            )

        check()
    return calls


async def test_no_server_errors_and_documented_shapes(live_server, factory, client):
    ti, token = await factory.running_ti(client, dag_id="fuzz", task_id="t", run_id="r")
    calls = await asyncio.to_thread(fuzz, live_server.url, str(ti.id), token)
    assert len(calls) >= 20  # every operation was exercised
    assert sum(calls.values()) >= 200
