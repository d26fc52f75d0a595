"""The route-policy table is pinned: widening a route's access changes this snapshot, so
it shows up in review. Regenerate with `taskgate routes --json > tests/security/routes.snapshot.json`."""

import json
from pathlib import Path

from taskgate.api.app import create_app
from taskgate.security.route_policy import route_policies

SNAPSHOT = Path(__file__).with_name("routes.snapshot.json")


def test_route_policies_match_the_snapshot():
    current = [p.as_dict() for p in route_policies(create_app().routes)]
    pinned = json.loads(SNAPSHOT.read_text())
    assert current == pinned, "route policy changed: review it, then regenerate the snapshot"
