"""The API documentation pages over HTTP: our own HTML under a strict
Content-Security-Policy, every file it loads served by taskgate itself, ReDoc gone.
(In a real browser: test_docs_pages_browser.py.)"""

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from taskgate.api.docs_pages import STATIC_DIR, page

POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
PAGES = {"/docs": "/openapi.json", "/control/docs": "/control/v1/openapi.json"}
SCRIPT_TYPES = {"text/javascript", "application/javascript"}


@pytest.fixture
def database_url() -> None:
    """The embedded SQLite database only: the pages read no data."""
    return None


class Markup(HTMLParser):
    """The parts of a page a Content-Security-Policy cares about."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.script_text.append(data)

    def urls(self) -> list[str]:
        return [attrs[name] or "" for _tag, attrs in self.tags for name in ("src", "href")
                if name in attrs]


def parse(html: str) -> Markup:
    markup = Markup()
    markup.feed(html)
    return markup


def assert_security_headers(response) -> None:
    assert response.headers["content-security-policy"] == POLICY
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize("path", PAGES)
async def test_the_page_is_ours_and_loads_nothing_from_elsewhere(client, path):
    response = await client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_security_headers(response)
    markup = parse(response.text)
    scripts = [attrs for tag, attrs in markup.tags if tag == "script"]
    assert scripts and all(attrs.get("src") for attrs in scripts)
    assert markup.script_text == []  # no inline script
    assert not any(tag == "style" or "style" in attrs for tag, attrs in markup.tags)
    assert not any(name.startswith("on") for _tag, attrs in markup.tags for name in attrs)
    assert not re.search(r"https?://|//[a-z0-9]", response.text, re.IGNORECASE)
    assert all(url.startswith("/") and not url.startswith("//") for url in markup.urls())
    [root] = [attrs for _tag, attrs in markup.tags if attrs.get("id") == "swagger-ui"]
    assert root["data-openapi-url"] == PAGES[path]
    assert (await client.get(PAGES[path])).status_code == 200


@pytest.mark.parametrize("path", PAGES)
async def test_every_file_the_page_loads_is_served_with_its_type(client, path):
    markup = parse((await client.get(path)).text)
    loaded = [(tag, attrs.get("src") or attrs.get("href")) for tag, attrs in markup.tags
              if tag == "script" or (tag == "link" and attrs.get("rel") in {"stylesheet", "icon"})]
    assert {url for _tag, url in loaded} >= {
        "/static/swagger-ui/swagger-ui-bundle.js", "/static/swagger-ui/swagger-ui.css",
        "/static/docs/init.js", "/static/docs/docs.css",
    }
    for tag, url in loaded:
        response = await client.get(url)
        assert response.status_code == 200, url
        media_type = response.headers["content-type"].split(";")[0]
        if tag == "script":
            assert media_type in SCRIPT_TYPES, url
        elif url.endswith(".css"):
            assert media_type == "text/css", url
        else:
            assert media_type == "image/png", url
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.content == (STATIC_DIR / url.removeprefix("/static/")).read_bytes()


async def test_redoc_and_the_oauth2_redirect_are_gone(client):
    assert (await client.get("/redoc")).status_code == 404
    assert (await client.get("/docs/oauth2-redirect")).status_code == 404


async def test_static_files_stay_inside_their_directory(client):
    for path in ("/static/%2e%2e/docs_pages.py", "/static/..%2fdocs_pages.py",
                 "/static/docs/%2e%2e/%2e%2e/app.py", "/static/docs", "/static/docs/", "/static/nope.js"):
        assert (await client.get(path)).status_code == 404, path
    assert (await client.post("/static/docs/init.js")).status_code == 405


async def test_static_files_are_revalidated(client):
    first = await client.get("/static/docs/init.js")
    assert first.headers["cache-control"] == "no-cache"
    again = await client.get("/static/docs/init.js", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    head = await client.head("/static/swagger-ui/swagger-ui.css")
    assert head.status_code == 200 and head.content == b""


def test_the_page_escapes_what_it_is_given():
    html = page('<b>"x"</b>', '/a"><script>alert(1)</script>').body.decode()
    assert "<script>alert" not in html and "<b>" not in html
    [root] = [attrs for _tag, attrs in parse(html).tags if attrs.get("id") == "swagger-ui"]
    assert root["data-openapi-url"] == '/a"><script>alert(1)</script>'


def test_the_vendored_swagger_ui_is_5x_and_unchanged():
    """The files are what scripts/vendor-swagger-ui.sh took from swagger-ui-dist: the
    version its README names (5.x: OpenAPI 3.1) and the checksums it wrote."""
    vendored = STATIC_DIR / "swagger-ui"
    readme = (vendored / "README.md").read_text()
    version = re.match(r"# Swagger UI (\d+)\.(\d+)\.(\d+)\n", readme)
    assert version and version.group(1) == "5"
    checksums = dict(re.findall(r"^\| (\S+) \| ([0-9a-f]{64}) \|$", readme, re.MULTILINE))
    assert {"swagger-ui-bundle.js", "swagger-ui.css", "LICENSE", "NOTICE"} <= set(checksums)
    for name, digest in checksums.items():
        assert hashlib.sha256((vendored / name).read_bytes()).hexdigest() == digest, name
    assert {p.name for p in vendored.iterdir()} == {*checksums, "README.md"}


def test_the_wheel_carries_the_static_files():
    """pyproject.toml's package data names every file the pages serve."""
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    assert '"api/static/*/*"' in pyproject
    assert all(p.parent.parent == STATIC_DIR for p in STATIC_DIR.rglob("*") if p.is_file())


async def test_the_pages_answer_head_as_get(client):
    for path in ("/docs", "/control/docs"):
        head = await client.head(path)
        assert head.status_code == 200, path
        assert head.headers["content-security-policy"]
