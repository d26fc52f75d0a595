"""The operator page's own routes (the page in a browser: test_ui_browser.py): served
from the package, under the strict Content-Security-Policy, with no credential and no
data of its own."""

from __future__ import annotations

from taskgate.api.docs_pages import STATIC_DIR
from tests.api.test_docs_pages import assert_security_headers


async def test_the_page_and_its_files_are_served_under_the_policy(client) -> None:
    page = await client.get("/ui")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["cache-control"] == "no-cache"
    assert_security_headers(page)
    html = page.text
    assert '<script src="/static/ui/app.js"' in html
    for name in ("app.js", "app.css"):
        asset = await client.get(f"/static/ui/{name}")
        assert asset.status_code == 200, name
        assert_security_headers(asset)
    # No inline script or style for the policy to refuse, and nothing from elsewhere.
    assert "<style" not in html and " style=" not in html
    assert "<script>" not in html and "http://" not in html and "https://" not in html


async def test_the_page_needs_no_credential_and_holds_no_data(client, factory) -> None:
    await factory.queued_ti()
    page = await client.get("/ui")  # no Authorization, no cookie
    assert page.status_code == 200
    # The file as shipped, whatever the database holds: data comes only through the
    # control API, with the operator's session.
    assert page.content == (STATIC_DIR / "ui" / "index.html").read_bytes()
    head = await client.head("/ui")
    assert head.status_code == 200 and head.content == b""
