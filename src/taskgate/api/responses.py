"""OpenAPI descriptions of the domain error answers, shared by the routers."""

from typing import Any

_DOMAIN_DETAIL = {
    "type": "object",
    "properties": {"reason": {"type": "string"}, "message": {"type": "string"}},
    "required": ["reason", "message"],
}
# Domain errors carry {"reason", "message"}; the security layers answer with a plain
# string (docs/api.md, "Errors"), and either can produce a 403 or a 409 on the same route.
_DETAIL = {
    "type": "object",
    "properties": {"detail": {"anyOf": [{"type": "string"}, _DOMAIN_DETAIL]}},
    "required": ["detail"],
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _DETAIL}}}


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _error("Not found")}
CONFLICT: dict[int | str, dict[str, Any]] = {409: _error("Not allowed in the current state")}
FORBIDDEN_BY_POLICY: dict[int | str, dict[str, Any]] = {403: _error("Refused by access policy")}
