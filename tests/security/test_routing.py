"""TaskRoute: token policy computed at registration."""

import uuid

import pytest
from fastapi import APIRouter, FastAPI, Security

from taskgate.security import TaskRoute, require_auth
from taskgate.security.bindings import SUBJECT_BINDINGS
from taskgate.security.route_policy import route_policies, served_routes
from taskgate.tokens import TokenType


def _router(**kwargs) -> APIRouter:
    return APIRouter(route_class=TaskRoute, **kwargs)


def _route(router: APIRouter, path: str) -> TaskRoute:
    (route,) = [r for r in router.routes if r.path == path]
    return route


def test_default_is_execution_only():
    router = _router(dependencies=[Security(require_auth, scopes=["ti:self"])])

    @router.put("/ti/{task_instance_id}/beat")
    async def beat(task_instance_id: uuid.UUID) -> None: ...

    route = _route(router, "/ti/{task_instance_id}/beat")
    assert route.allowed_token_types == {TokenType.EXECUTION}
    assert route.subject_binding == "ti:self"


def test_one_route_relaxes_its_router_default():
    router = _router(dependencies=[Security(require_auth, scopes=["ti:self"])])

    @router.patch(
        "/ti/{task_instance_id}/run",
        dependencies=[Security(require_auth, scopes=["token:execution", "token:workload"])],
    )
    async def run(task_instance_id: uuid.UUID) -> None: ...

    @router.put("/ti/{task_instance_id}/other")
    async def other(task_instance_id: uuid.UUID) -> None: ...

    assert _route(router, "/ti/{task_instance_id}/run").allowed_token_types == {
        TokenType.EXECUTION,
        TokenType.WORKLOAD,
    }
    assert _route(router, "/ti/{task_instance_id}/other").allowed_token_types == {
        TokenType.EXECUTION
    }


def test_workload_only_route_excludes_execution():
    router = _router()

    @router.get("/w", dependencies=[Security(require_auth, scopes=["token:workload"])])
    async def w() -> None: ...

    assert _route(router, "/w").allowed_token_types == {TokenType.WORKLOAD}


def test_unknown_token_type_fails_at_registration():
    router = _router()
    with pytest.raises(ValueError, match="token:bogus"):

        @router.get("/x", dependencies=[Security(require_auth, scopes=["token:bogus"])])
        async def x() -> None: ...


def test_binding_without_its_path_parameter_fails_at_registration():
    router = _router(dependencies=[Security(require_auth, scopes=["ti:self"])])
    with pytest.raises(ValueError, match="task_instance_id"):

        @router.get("/no-param")
        async def x() -> None: ...


def test_route_without_require_auth_is_unauthenticated():
    router = _router()

    @router.get("/open")
    async def open_() -> None: ...

    assert _route(router, "/open").allowed_token_types is None


def test_policy_added_at_include_time_is_refused(runtime):
    from taskgate.api.app import create_app
    from taskgate.security.route_policy import check_policies_are_local

    router = _router()

    @router.get("/x/{task_instance_id}")
    async def x(task_instance_id: uuid.UUID) -> None: ...

    app = FastAPI()
    app.include_router(router, dependencies=[Security(require_auth, scopes=["token:workload"])])
    with pytest.raises(ValueError, match="include time"):
        check_policies_are_local(app.routes)
    create_app(runtime)  # the real app passes the same check


def test_every_bound_route_of_the_app_has_its_path_parameter(runtime):
    from taskgate.api.app import create_app

    app = create_app(runtime)
    bound = 0
    for path, _methods, declared, _eff in served_routes(app.routes):
        binding = getattr(declared, "subject_binding", None)
        if binding:
            bound += 1
            for scope in binding.split(","):
                assert "{" + SUBJECT_BINDINGS[scope] + "}" in path
    assert bound >= 7


def test_only_run_accepts_workload_tokens(runtime):
    from taskgate.api.app import create_app

    policies = route_policies(create_app(runtime).routes)
    workload = [(p.method, p.path) for p in policies if "workload" in p.token_types]
    assert workload == [("PATCH", "/execution/task-instances/{task_instance_id}/run")]
    # Open: neither a task token nor an operator key.
    open_routes = {p.path for p in policies if not p.token_types and not p.operator_role}
    assert open_routes == {
        "/control/docs",
        "/control/v1/openapi.json",
        "/.well-known/jwks.json",
        "/docs",
        "/openapi.json",
        "/static/{path}",
        "/ui",
        "/execution/health",
        "/execution/health/ping",
        "/metrics",
    }


@pytest.mark.parametrize(
    "scopes, route_scopes",
    [
        (["ti:gate-in-write", "ti:lifecycle"], []),  # not bound to its TI
        (["ti:self", "ti:gate-in-write"], []),  # not a lifecycle route
        (["ti:self", "ti:lifecycle", "ti:gate-in-write"], ["token:execution", "token:workload"]),
    ],
)
def test_gate_in_write_only_on_a_bound_lifecycle_route_for_execution_tokens(scopes, route_scopes):
    router = _router(dependencies=[Security(require_auth, scopes=scopes)])
    with pytest.raises(ValueError, match="ti:gate-in-write"):

        @router.put("/ti/{task_instance_id}/beat",
                    dependencies=[Security(require_auth, scopes=route_scopes)])
        async def beat(task_instance_id: uuid.UUID) -> None: ...


def test_only_the_heartbeat_leaves_the_token_gate_to_its_write(runtime):
    from taskgate.api.app import create_app

    gated_in_write = [
        (methods, path) for path, methods, declared, _eff in served_routes(create_app(runtime).routes)
        if getattr(declared, "gate_in_write", False)
    ]
    assert gated_in_write == [({"PUT"}, "/execution/task-instances/{task_instance_id}/heartbeat")]
