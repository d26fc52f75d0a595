"""The published OpenAPI document: bearer scheme on authenticated operations only, and no
internal extension fields."""

import json

from taskgate.api.app import create_app
from taskgate.security.route_policy import route_policies


async def test_every_authenticated_operation_declares_the_bearer_scheme(client, runtime):
    document = (await client.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["TaskToken"] == {
        "type": "http", "scheme": "bearer", "bearerFormat": "JWT"
    }
    authenticated = {
        (p.method.lower(), p.path) for p in route_policies(create_app(runtime).routes) if p.token_types
    }
    declared = {
        (method, path)
        for path, ops in document["paths"].items()
        for method, op in ops.items()
        if op.get("security") == [{"TaskToken": []}]
    }
    assert declared == authenticated
    assert len(authenticated) >= 15
    for path in ("/execution/health", "/.well-known/jwks.json"):
        assert "security" not in document["paths"][path]["get"]


async def test_no_internal_extension_fields(client):
    text = json.dumps((await client.get("/openapi.json")).json())
    assert '"x-' not in text
