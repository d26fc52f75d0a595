"""Requests to the mounted control API are labelled with their route template in the
metrics, as the Execution API's are."""

from tests.api.test_metrics import sample


async def test_control_requests_are_counted_by_their_route_template(client, operator_key):
    admin = await operator_key()
    assert (await client.get("/control/v1/dags", headers=admin)).status_code == 200
    assert (await client.get("/control/v1/dags/nope/access", headers=admin)).status_code == 404
    assert (await client.get("/control/v1/dags")).status_code == 401
    text = (await client.get("/metrics")).text
    assert sample(text, "taskgate_http_requests_total", method="GET", route="/control/v1/dags",
                  status="200") == 1
    assert sample(text, "taskgate_http_requests_total", method="GET", route="/control/v1/dags",
                  status="401") == 1
    assert sample(text, "taskgate_http_requests_total", method="GET",
                  route="/control/v1/dags/{dag_id}/access", status="404") == 1
    assert 'route="unmatched"' not in text
