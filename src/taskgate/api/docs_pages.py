"""The interactive API documentation pages: ``/docs`` (the Execution API's OpenAPI
document) and ``/control/docs`` (the control API's; its route is declared by
``taskgate.api.control.app`` with ``page``), and the files they load under ``/static``.

Everything the pages load comes from this package: Swagger UI 5 in
``static/swagger-ui/`` (vendored, unchanged; see the README there and
``scripts/vendor-swagger-ui.sh``) and our own start-up script and style sheet in
``static/docs/``. A page works without internet access, and an operator's browser fetches
no third-party script.

The page carries no inline script or style: ``static/docs/init.js`` reads the document's
URL from the ``data-openapi-url`` attribute of ``#swagger-ui`` and starts Swagger UI there.
That is what lets the pages be served under a strict Content-Security-Policy
(``CONTENT_SECURITY_POLICY``): scripts, styles, fetches and fonts from this origin only,
images also as ``data:`` URLs (Swagger UI's style sheet draws its icons with them), no
plugins, no ``<base>``, no framing. No relaxation is needed: Swagger UI and React set
element styles through the DOM (``element.style``), which ``style-src`` does not govern;
only ``style="..."`` in markup and ``<style>`` elements would need ``'unsafe-inline'``,
and Swagger UI 5 writes neither (tests/api/test_docs_pages_browser.py checks that the
pages render with no CSP violation in a real browser).

ReDoc is not served (``/redoc`` is off): its standalone bundle injects ``<style>``
elements at run time, which this policy refuses.

Security policy of the routes: none (no token), like ``/openapi.json``: the pages and the
static files hold nothing that the OpenAPI documents do not already publish.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from taskgate.security import TaskRoute

DOCS_URL = "/docs"
STATIC_URL = "/static"
STATIC_DIR = Path(__file__).with_name("static")
SWAGGER_UI_URL = f"{STATIC_URL}/swagger-ui"
PAGE_ASSETS_URL = f"{STATIC_URL}/docs"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
])
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(route_class=TaskRoute)


def page(title: str, openapi_url: str) -> HTMLResponse:
    """The documentation page of the OpenAPI document at ``openapi_url`` (a path on this
    server), with the security headers."""
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<link rel="icon" type="image/png" href="{SWAGGER_UI_URL}/favicon-32x32.png">
<link rel="stylesheet" href="{SWAGGER_UI_URL}/swagger-ui.css">
<link rel="stylesheet" href="{PAGE_ASSETS_URL}/docs.css">
</head>
<body>
<noscript><p class="docs-fallback">This page needs JavaScript. The OpenAPI document is at
<a href="{escape(openapi_url)}">{escape(openapi_url)}</a>.</p></noscript>
<div id="swagger-ui" data-openapi-url="{escape(openapi_url)}"></div>
<script src="{SWAGGER_UI_URL}/swagger-ui-bundle.js"></script>
<script src="{PAGE_ASSETS_URL}/init.js"></script>
</body>
</html>
"""
    return HTMLResponse(html, headers=SECURITY_HEADERS)


@router.api_route(DOCS_URL, methods=["GET", "HEAD"], include_in_schema=False)
async def api_docs_page(request: Request) -> HTMLResponse:
    """``/docs``: the page of the serving application's own OpenAPI document."""
    app = request.app
    return page(app.title, app.openapi_url)


class _StaticFiles(StaticFiles):
    """Starlette's static files, answered with the pages' security headers (``nosniff``
    above all: a script or style sheet is used only with its own content type)."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers.update(SECURITY_HEADERS)
        # Revalidated on each use (ETag): a new release's files replace the old at once.
        response.headers["Cache-Control"] = "no-cache"
        return response


_static_files = _StaticFiles(directory=STATIC_DIR)


# A route rather than a mount, so that it has a policy row in `taskgate routes` (and the
# route snapshot) and a route template in the metrics and access log, as every other path.
@router.api_route(STATIC_URL + "/{path:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def static_file(path: str, request: Request) -> Response:
    """A file under ``STATIC_DIR`` (``package_file``)."""
    return await package_file(path, request)


async def package_file(path: str, request: Request) -> Response:
    """The file ``path`` under ``STATIC_DIR``, with the pages' security headers:
    Starlette's ``StaticFiles`` finds it (nothing outside the directory, no listings;
    ETag and ``If-None-Match``), 404 otherwise."""
    return await _static_files.get_response(path, request.scope)
