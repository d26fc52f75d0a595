"""/metrics after accepted and refused requests: the matching counters moved."""

import re

from tests.support.api import BEAT_BODY, bearer


def sample(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and ",".join(sorted(match.group(1).split(","))) == want:
            return float(match.group(2))
    return 0.0


async def test_metrics_count_requests_denials_and_tokens(client, factory):
    ti, token = await factory.running_ti(client)  # one /run: a token exchanged
    beat = f"/execution/task-instances/{ti.id}/heartbeat"
    for _ in range(3):
        assert (await client.put(beat, json=BEAT_BODY, headers=bearer(token))).status_code == 204
    assert (await client.put(beat, json=BEAT_BODY)).status_code == 401
    assert (await client.put(beat, json=BEAT_BODY, headers=bearer("x.y.z"))).status_code == 403
    expired = factory.token(ti.id, ttl=-60)
    assert (await client.put(beat, json=BEAT_BODY, headers=bearer(expired))).status_code == 403
    short = factory.token(ti.id, ttl=25)
    refreshed = await client.put(beat, json=BEAT_BODY, headers=bearer(short))
    assert "Refreshed-API-Token" in refreshed.headers

    response = await client.get("/metrics")
    assert response.status_code == 200
    text = response.text
    route = "/execution/task-instances/{task_instance_id}/heartbeat"
    assert sample(text, "taskgate_http_requests_total", method="PUT", route=route, status="204") == 4
    assert sample(text, "taskgate_http_requests_total", method="PUT", route=route, status="401") == 1
    assert sample(text, "taskgate_auth_denials_total", reason="missing_token") == 1
    assert sample(text, "taskgate_auth_denials_total", reason="malformed_token") == 1
    assert sample(text, "taskgate_auth_denials_total", reason="token_expired") == 1
    assert sample(text, "taskgate_tokens_issued_total", kind="exchanged") == 1
    assert sample(text, "taskgate_tokens_issued_total", kind="refreshed") == 1
    assert sample(text, "taskgate_http_request_duration_seconds_count", method="PUT", route=route) == 7
    assert "taskgate_db_pool_size" in text
    assert ti.id.hex not in text and str(ti.id) not in text  # templates only, never ids


async def test_health_reports_the_database(client):
    response = await client.get("/execution/health")
    assert response.json() == {"status": "healthy", "database": "ok"}
