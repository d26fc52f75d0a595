"""Subject bindings: a scope that ties the token's ``sub`` to a path parameter.

Adding a binding is one line here; ``TaskRoute`` checks at registration that every route
using a binding has the path parameter, and ``require_auth`` compares them per request.
"""

SUBJECT_BINDINGS: dict[str, str] = {
    "ti:self": "task_instance_id",
}
