"""Schemathesis against the live OpenAPI document of a real server on 127.0.0.1, with a
valid execution token: no operation answers 5xx, and every answer matches its documented
schema. Bounded: a few dozen examples per operation."""

import asyncio

import pytest
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.fuzz.schemathesis_run import fuzz_operations
from tests.support.api import bearer

pytestmark = pytest.mark.integration


@pytest.fixture
def database_url():  # SQLite only: the fuzz targets the API surface, not the backend
    return None


def fuzz(base_url: str, ti_id: str, token: str) -> dict[str, int]:
    def past_the_subject_binding(case, _calls: int) -> None:
        if "task_instance_id" in (case.path_parameters or {}):
            case.path_parameters["task_instance_id"] = ti_id

    return fuzz_operations(
        f"{base_url}/openapi.json", base_url, bearer(token),
        [response_schema_conformance, content_type_conformance], past_the_subject_binding,
    )


async def test_no_server_errors_and_documented_shapes(live_server, factory, client):
    ti, token = await factory.running_ti(client, dag_id="fuzz", task_id="t", run_id="r")
    calls = await asyncio.to_thread(fuzz, live_server.url, str(ti.id), token)
    assert len(calls) >= 20  # every operation was exercised
    assert sum(calls.values()) >= 200
