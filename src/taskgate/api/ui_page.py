"""The operator page, ``/ui``: taskgate's task instances, live, and the one action an
incident needs (revoke a TI's tokens), in a browser.

The page is static: ``static/ui/index.html`` with our own script and style sheet beside it
(served by ``docs_pages.static_file`` under ``/static/ui``), shipped in the package, no
build step, no third-party file. Everything it shows it reads from the control API with
the operator's browser session (``/control/v1/sessions``, docs/control.md "Browser
sessions"): the page itself holds no data, so its routes need no credential, like the
documentation pages; the session, its CSRF token and every role and team check belong to
the control API.

Served with the documentation pages' security headers: a Content-Security-Policy that
allows scripts, styles and fetches from this origin only (no inline script or style),
no framing, ``nosniff``, no referrer.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from taskgate.api.docs_pages import package_file
from taskgate.security import TaskRoute

UI_URL = "/ui"

router = APIRouter(route_class=TaskRoute)


@router.api_route(UI_URL, methods=["GET", "HEAD"], include_in_schema=False)
async def operator_page(request: Request) -> Response:
    """The page (``static/ui/index.html``); it signs in and reads everything else
    through the control API."""
    return await package_file("ui/index.html", request)
