"""The API documentation pages in a real browser (headless Chromium, tests/support/browser.py)
against taskgate served on 127.0.0.1: they render every operation from files of this
server alone, under their Content-Security-Policy, with nothing refused and no error.
The screenshots in docs/images/ are made here."""


import httpx
import pytest
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from tests.support.browser import BrowserPage, save_screenshot

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

HEARTBEAT = "/execution/task-instances/{task_instance_id}/heartbeat"


@pytest.fixture
def database_url() -> None:
    """The embedded SQLite database only: the pages read no data, so a second backend
    would only run the same pages again."""
    return None


def operations(document: dict) -> int:
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return sum(1 for item in document["paths"].values() for method in item if method in methods)


async def open_docs(browser_page: BrowserPage, url: str, openapi_url: str) -> int:
    """Open the page at ``url`` and wait for Swagger UI to render; the number of
    operations in the document it shows."""
    async with httpx.AsyncClient(timeout=30) as http:
        document = (await http.get(openapi_url)).json()
    page = browser_page.page
    response = await page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    try:
        await page.locator(".opblock").first.wait_for(timeout=20_000)
    except PlaywrightTimeoutError:
        raise AssertionError(
            f"no operation rendered at {url}; blocked: {browser_page.blocked}, "
            f"errors: {browser_page.page_errors}, console: {browser_page.console}"
        ) from None
    await page.wait_for_load_state("networkidle")
    return operations(document)


async def assert_clean(browser_page: BrowserPage) -> None:
    assert browser_page.blocked == [], "the page asked for something off this machine"
    assert await browser_page.csp_violations() == []
    assert browser_page.page_errors == []
    assert browser_page.console_errors() == []


async def test_the_execution_api_page_renders_offline_under_its_policy(live_server, browser_page):
    expected = await open_docs(browser_page, f"{live_server.url}/docs", f"{live_server.url}/openapi.json")
    page = browser_page.page
    assert expected >= 30
    assert await page.locator(".opblock").count() == expected
    heartbeat = page.locator(".opblock-put .opblock-summary-path", has_text=HEARTBEAT)
    await heartbeat.wait_for()
    assert await page.locator(".info .title").inner_text() != ""
    # Swagger UI's own style sheet is in force (a rule of swagger-ui.css, not a default).
    assert await page.locator(".swagger-ui .opblock").first.evaluate(
        "node => getComputedStyle(node).borderRadius"
    ) == "4px"
    # No public validator badge: validatorUrl is off.
    assert await page.locator(".swagger-ui img[src*='validator']").count() == 0
    await save_screenshot(page, "api-docs.png")
    await assert_clean(browser_page)


async def test_the_control_api_page_renders_offline_under_its_policy(live_server, browser_page):
    expected = await open_docs(
        browser_page, f"{live_server.url}/control/docs", f"{live_server.url}/control/v1/openapi.json"
    )
    page = browser_page.page
    assert expected >= 20
    assert await page.locator(".opblock").count() == expected
    await page.locator(".opblock-post .opblock-summary-path", has_text="/dags/{dag_id}/runs").wait_for()
    # The document's server: "Try it out" sends its requests to /control/v1 on this host.
    assert await page.locator(".servers select option").all_inner_texts() == ["/control/v1"]
    await save_screenshot(page, "control-docs.png")
    await assert_clean(browser_page)


async def test_an_operation_opens_and_its_try_out_stays_on_this_server(live_server, browser_page):
    await open_docs(browser_page, f"{live_server.url}/docs", f"{live_server.url}/openapi.json")
    page = browser_page.page
    health = page.locator(".opblock-get", has=page.locator(".opblock-summary-path", has_text="/execution/health/ping"))
    await health.locator(".opblock-summary").click()
    await health.get_by_role("button", name="Try it out").click()
    async with page.expect_response(lambda r: r.url.endswith("/execution/health/ping")) as answer:
        await health.get_by_role("button", name="Execute").click()
    assert (await answer.value).status == 200
    await health.locator(".live-responses-table .response-col_status", has_text="200").wait_for()
    await assert_clean(browser_page)


async def test_the_browser_enforces_the_policy(live_server, browser_page):
    """The header reaches the browser and is obeyed: an inline script and an inline style
    put into the page are refused and reported."""
    await open_docs(browser_page, f"{live_server.url}/docs", f"{live_server.url}/openapi.json")
    page = browser_page.page
    ran = await page.evaluate("""() => {
        const script = document.createElement("script");
        script.textContent = "window.__inlineRan = true";
        document.body.append(script);
        const style = document.createElement("style");
        style.textContent = "body { background: rgb(1, 2, 3) }";
        document.head.append(style);
        return window.__inlineRan === true;
    }""")
    assert ran is False
    assert await page.evaluate("() => getComputedStyle(document.body).backgroundColor") != "rgb(1, 2, 3)"
    await page.wait_for_function("() => window.__cspViolations.length >= 2")
    violations = await browser_page.csp_violations()
    assert {v.split()[0] for v in violations} == {"script-src-elem", "style-src-elem"}
    assert all(v.split()[1] == "inline" for v in violations)
