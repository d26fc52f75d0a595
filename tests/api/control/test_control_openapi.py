"""The control API's OpenAPI document and page, apart from the Execution API's."""


async def test_the_control_api_has_its_own_document_and_page(client):
    page = await client.get("/control/docs")
    assert page.status_code == 200 and "/control/v1/openapi.json" in page.text
    document = (await client.get("/control/v1/openapi.json")).json()
    paths = set(document["paths"])
    assert {"/events", "/dags/{dag_id}/runs", "/task-instances/{ti_id}/queue"} <= paths
    assert not any(path.startswith("/execution") for path in paths)
    assert document["servers"] == [{"url": "/control/v1"}]
    execution = (await client.get("/openapi.json")).json()
    assert not any(path.startswith("/control") for path in execution["paths"])
    streamed = document["paths"]["/events"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in streamed
