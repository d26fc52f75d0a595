"""The route-policy table behind ``taskgate routes``: every served route with its allowed
token types, subject binding and where its token gate runs (Execution API), or the
operator role it needs (control API, team-scoped), read from the routes the application
actually serves, mounted applications included."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from starlette.routing import BaseRoute, Mount

from taskgate.security.routing import TaskRoute


@dataclass(frozen=True, slots=True)
class RoutePolicy:
    method: str
    path: str
    token_types: tuple[str, ...]  # empty: no token needed
    subject: str | None
    # Where revocation (and an ended TI) is checked: "request" (require_auth's token gate,
    # before the handler), "write" (the route's own write: ti:gate-in-write), None (open).
    token_gate: str | None
    # Control API: the role an operator needs, and whose DAGs it reaches: "own" (its
    # teams') or "all" (only an operator without teams may call it).
    operator_role: str | None = None
    operator_teams: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "token_types": list(self.token_types),
            "subject": self.subject,
            "token_gate": self.token_gate,
            "operator_role": self.operator_role,
            "operator_teams": self.operator_teams,
        }


def served_routes(routes: list[BaseRoute]) -> Iterator[tuple[str, set[str], BaseRoute, Any]]:
    """(path, methods, declared route, effective route) for every route served; the path
    as OpenAPI shows it (``{key}``, not ``{key:path}``).

    Recent FastAPI keeps included routers lazily (``iter_route_contexts``); older releases
    copy the routes into ``app.routes``. Both are read here.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # FastAPI without lazy includes
        for route in routes:
            path = getattr(route, "path_format", None) or getattr(route, "path", "")
            yield path, getattr(route, "methods", None) or set(), route, route
        return
    for context in iter_route_contexts(routes):
        path = context.path_format or context.path or ""
        yield path, context.methods or set(), context.original_route, context


def check_policies_are_local(routes: list[BaseRoute]) -> None:
    """Refuse an app that adds dependencies when including a router: a route's policy
    must be visible in the file that declares the route."""
    for path, _methods, declared, effective in served_routes(routes):
        if not isinstance(declared, TaskRoute) or effective is declared:
            continue
        if len(getattr(effective, "dependencies", [])) != len(declared.dependencies):
            raise ValueError(f"{path}: dependencies added at include time; declare them on the router")


def route_policies(routes: list[BaseRoute], prefix: str = "") -> list[RoutePolicy]:
    policies = []
    for route in routes:
        if isinstance(route, Mount) and route.routes:
            policies += route_policies(route.routes, prefix + route.path)
    for path, methods, declared, _effective in served_routes(routes):
        path = prefix + path
        role = getattr(declared, "required_role", None)
        types = getattr(declared, "allowed_token_types", None) or frozenset()
        names = tuple(sorted(t.value for t in types))
        subject = getattr(declared, "subject_binding", None)
        gate = None
        if names:
            gate = "write" if getattr(declared, "gate_in_write", False) else "request"
        for method in sorted(methods - {"HEAD"} if "GET" in methods else methods):
            policies.append(RoutePolicy(method, path, names, subject, gate, role and str(role),
                                        getattr(declared, "team_scope", None)))
    return sorted(policies, key=lambda p: (p.path, p.method))
