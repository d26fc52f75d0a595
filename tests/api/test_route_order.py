"""The Execution API's routers share prefixes (``/task-instances`` has four), and the app
includes them in the order ``EXECUTION_ROUTERS`` gives, most frequent first. That order
decides only how soon a request finds its route, never which route: no request that a
route of one router serves is matched by a route of another. (Within one router, its
file's order decides, as FastAPI does: ``/variables/keys`` before ``/variables/{key}``.)"""

from __future__ import annotations

import re
import uuid

from starlette.routing import Match

from taskgate.api.app import EXECUTION_ROUTERS

SAMPLE = {"task_instance_id": str(uuid.uuid4())}


def concrete(path: str) -> str:
    """A request path for a route template: each parameter filled with a sample value."""
    return re.sub(r"{(\w+)(:\w+)?}", lambda m: SAMPLE.get(m.group(1), "sample"), path)


def test_no_request_is_matched_by_routes_of_two_routers():
    checked = 0
    for index, router in enumerate(EXECUTION_ROUTERS):
        others = [r for i, other in enumerate(EXECUTION_ROUTERS) if i != index for r in other.routes]
        for route in router.routes:
            for method in route.methods:  # type: ignore[attr-defined]
                path = concrete(route.path)  # type: ignore[attr-defined]
                scope = {"type": "http", "path": path, "method": method, "root_path": ""}
                clashes = [o.path for o in others if o.matches(scope)[0] is Match.FULL]  # type: ignore[attr-defined]
                assert not clashes, f"{method} {path} is also matched by {clashes}"
                checked += 1
    assert checked > 30


def test_the_heartbeat_router_comes_first():
    first = EXECUTION_ROUTERS[0]
    assert [route.path for route in first.routes] == ["/task-instances/{task_instance_id}/heartbeat"]  # type: ignore[attr-defined]
