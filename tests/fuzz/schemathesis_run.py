"""One bounded schemathesis run over every operation of an OpenAPI document on a live
server: no 5xx, and the checks asked for."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings

MAX_EXAMPLES = 25


def fuzz_operations(
    schema_url: str,
    base_url: str,
    headers: dict[str, str],
    checks: list[Any],
    prepare: Callable[[Any, int], None],
) -> dict[str, int]:
    """Calls per operation. ``prepare(case, operations called so far)`` may point a case
    at known rows."""
    schema = schemathesis.openapi.from_url(schema_url)
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            prepare(case, len(calls))
            response = case.call(base_url=base_url, headers=headers, timeout=10)
            calls[label] = calls.get(label, 0) + 1
            assert response.status_code < 500, (label, response.status_code, response.text[:300])
            case.validate_response(response, checks=checks)

        check()
    return calls
