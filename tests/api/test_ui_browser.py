"""The operator page (``/ui``) in a real browser (headless Chromium, tests/support/browser.py)
against taskgate served on 127.0.0.1: signing in and out with the session cookie, the task
instances table updated live from the event stream while ``taskgate worker run`` runs a
task, revoking a running task's tokens from its page (and its worker refused), what a
reader's session may not do, the CSRF token, stale heartbeats, the keyboard, a phone's
screen; each under the page's Content-Security-Policy, with nothing off this machine
asked for and no page error. The screenshots docs/images/ui-*.png are made here."""

from __future__ import annotations

import asyncio
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect
from sqlalchemy import update

from taskgate.db.models import TaskInstance
from taskgate.runtime import Runtime
from taskgate.services import control, operators
from taskgate.services.operators import Role
from tests.support.api import BEAT_BODY, RUN_BODY, bearer
from tests.support.browser import BrowserPage, local_page, save_screenshot
from tests.support.database import fresh_ti
from tests.support.workloads import Workloads, finish, start_worker, worker_env

pytestmark = [
    pytest.mark.integration, pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")
]

PHONE = {"width": 390, "height": 844}
# What a page may log as an error: the browser's own line for an answer the page expects
# and handles (401 before signing in, the refusals the tests provoke on purpose).
EXPECTED_CONSOLE = re.compile(
    r"Failed to load resource: the server responded with a status of 40[13]"
)
LIVE_MS = 20_000  # an event reaches the page well within this
STALE_AFTER_SECONDS = 30  # app.js STALE_AFTER_SECONDS
# Playwright's assertions retry until this (its default, 5 s, is short on a busy machine).
expect.set_options(timeout=10_000)


@pytest.fixture
def database_url() -> None:
    """The embedded SQLite database only: the page is the same on every backend, and the
    control API under it is tested on each elsewhere."""
    return None


@pytest_asyncio.fixture(loop_scope="session")
async def db(live_server, settings) -> AsyncIterator[Runtime]:  # type: ignore[no-untyped-def]
    """The server's database, from the tests' own (session) event loop: a runtime of its
    own, as a scheduler beside the server would have."""
    runtime = Runtime.from_settings(settings)
    try:
        yield runtime
    finally:
        await runtime.aclose()


@pytest.fixture
def workloads(db: Runtime, tmp_path: Path) -> Workloads:
    return Workloads(db, tmp_path)


# ---- Helpers ---------------------------------------------------------------------------


async def operator_key(db: Runtime, name: str, role: Role, *teams: str) -> str:
    async with db.sessionmaker() as session:
        return (await operators.add_operator(session, name, role, teams)).key


async def new_run(
    db: Runtime, dag_id: str, run_id: str, tasks: Sequence[str], *, team: str | None = None,
    mapped: dict[str, int] | None = None,
) -> dict[tuple[str, int], uuid.UUID]:
    """A DAG (with its team) and a run of it: its TIs' ids by (task, map index)."""
    async with db.sessionmaker() as session:
        await control.add_dag(session, dag_id, team=team)
        created = await control.create_run(session, dag_id, run_id, list(tasks), mapped=mapped)
    return {(ti.task_id, ti.map_index): ti.id for ti in created.task_instances}


async def set_row(db: Runtime, ti_id: uuid.UUID, **values: Any) -> None:
    """Write a TI's row directly (what a worker's reports would have left there)."""
    async with db.sessionmaker() as session:
        await session.execute(update(TaskInstance).where(TaskInstance.id == ti_id).values(**values))
        await session.commit()


async def open_ui(browser_page: BrowserPage, url: str) -> Page:
    page = browser_page.page
    response = await page.goto(f"{url}/ui", wait_until="load")
    assert response is not None and response.status == 200
    await expect(page.locator("#sign-in-view")).to_be_visible()
    return page


async def sign_in(page: Page, key: str) -> None:
    await page.get_by_label("Operator key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#list-view")).to_be_visible()
    await expect(page.locator("#live")).to_have_text("Live", timeout=LIVE_MS)


def row(page: Page, ti_id: uuid.UUID):  # type: ignore[no-untyped-def]
    return page.locator(f'#ti-rows tr[data-ti-id="{ti_id}"]')


async def page_fetch(page: Page, method: str, path: str, csrf: str | None = "session") -> dict:
    """A request made by page script with the session cookie: with the session's CSRF
    token (read from /sessions/current, as the page does), none (None) or the one given."""
    return await page.evaluate(
        """async ([method, path, csrf]) => {
            const headers = {};
            if (csrf === "session") {
                const session = await (await fetch("/control/v1/sessions/current")).json();
                headers["X-CSRF-Token"] = session.csrf_token;
            } else if (csrf !== null) {
                headers["X-CSRF-Token"] = csrf;
            }
            const response = await fetch(path, {method, headers});
            const text = await response.text();
            return {status: response.status, reason: response.headers.get("Taskgate-Reason"),
                    body: text ? JSON.parse(text) : null};
        }""",
        [method, path, csrf],
    )


async def assert_clean(browser_page: BrowserPage) -> None:
    assert browser_page.blocked == [], "the page asked for something off this machine"
    assert await browser_page.csp_violations() == []
    assert browser_page.page_errors == []
    unexpected = [m for m in browser_page.console_errors() if not EXPECTED_CONSOLE.search(m)]
    assert unexpected == [], unexpected


async def run_ti(db: Runtime, url: str, ti_id: uuid.UUID) -> str:
    """Queue the TI and start it as a worker would (``/run`` with its workload token):
    its execution token."""
    queued = await db.lifecycle.queue(ti_id)
    async with httpx.AsyncClient(base_url=f"{url}/execution") as http:
        run = await http.patch(f"/task-instances/{ti_id}/run", json=RUN_BODY,
                               headers=bearer(queued.workload_token))
    assert run.status_code == 200, run.text
    return run.headers["Refreshed-API-Token"]


async def heartbeat(url: str, ti_id: uuid.UUID, token: str) -> int:
    async with httpx.AsyncClient(base_url=f"{url}/execution") as http:
        answer = await http.put(f"/task-instances/{ti_id}/heartbeat", json=BEAT_BODY,
                                headers=bearer(token))
    return answer.status_code


async def control_get(url: str, key: str, path: str, **params: Any) -> Any:
    async with httpx.AsyncClient(base_url=f"{url}/control/v1") as http:
        answer = await http.get(path, params=params, headers=bearer(key))
    assert answer.status_code == 200, answer.text
    return answer.json()


async def refusals_recorded(url: str, key: str, total: int, **params: Any) -> dict:
    """The refusals summary once ``total`` refusals are recorded (they are written in the
    background)."""
    deadline = time.monotonic() + 10
    while True:
        summary = await control_get(url, key, "/refusals", **params)
        if summary["total"] >= total or time.monotonic() > deadline:
            assert summary["total"] == total, summary
            return summary
        await asyncio.sleep(0.1)


def stop(proc) -> None:  # type: ignore[no-untyped-def]
    if proc.poll() is None:
        proc.kill()
        proc.communicate(timeout=10)


# ---- Tests -----------------------------------------------------------------------------


async def test_sign_in_shows_the_table_and_sign_out_ends_the_session(live_server, db, browser_page):
    tis = await new_run(db, "etl", "nightly", ["extract", "load"])
    key = await operator_key(db, "alice", Role.OPERATOR)
    page = await open_ui(browser_page, live_server.url)
    # Not signed in: the sign-in form only, its field a labelled password field.
    assert await page.get_by_label("Operator key").get_attribute("type") == "password"
    await expect(page.locator("#list-view")).to_be_hidden()
    await expect(page.locator("#who")).to_be_hidden()
    await save_screenshot(page, "ui-sign-in.png")

    # A wrong key: the server's reason, and still the form.
    await page.get_by_label("Operator key").fill("tgk_not-a-key")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.locator("#sign-in-error")).to_contain_text("invalid_key")
    await expect(page.locator("#list-view")).to_be_hidden()

    await sign_in(page, key)
    await expect(page.locator("#who-name")).to_have_text("alice")
    await expect(page.locator("#who-role")).to_have_text("operator")
    await expect(page.locator("#ti-rows tr")).to_have_count(2)
    await expect(row(page, tis[("extract", -1)]).locator(".col-state")).to_have_text("scheduled")
    await expect(row(page, tis[("load", -1)]).locator(".col-dag")).to_have_text("etl")
    # The key is gone from the field; the session is a cookie page script cannot read; the
    # CSRF token is kept in no storage.
    assert await page.get_by_label("Operator key").input_value() == ""
    assert await page.evaluate(
        "() => [document.cookie, localStorage.length, sessionStorage.length]"
    ) == ["", 0, 0]
    cookies = {c["name"]: c for c in await page.context.cookies()}
    session_cookie = cookies["taskgate_session"]
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"

    await page.get_by_role("button", name="Sign out").click()
    await expect(page.locator("#sign-in-view")).to_be_visible()
    await expect(page.locator("#list-view")).to_be_hidden()
    await expect(page.locator("#ti-rows tr")).to_have_count(0)
    # The browser holds no session, and the old cookie is worth nothing any more.
    answer = await page.request.get(f"{live_server.url}/control/v1/dags")
    assert answer.status == 401
    async with httpx.AsyncClient(base_url=live_server.url, timeout=10) as http:
        old = await http.get("/control/v1/dags",
                             headers={"Cookie": f"taskgate_session={session_cookie['value']}"})
    assert old.status_code == 401 and old.headers["Taskgate-Reason"] == "session_ended"
    assert await browser_page.csp_violations() == []  # (a reload starts a new record)
    # A reload asks the server, which says: not signed in.
    await page.reload(wait_until="load")
    await expect(page.locator("#sign-in-view")).to_be_visible()
    await assert_clean(browser_page)


async def test_a_task_instance_goes_from_queued_to_success_live(
    live_server, db, workloads, settings, browser_page
):
    ti_id = await workloads.new_ti("hello")
    key = await operator_key(db, "watcher", Role.READER)
    page = await open_ui(browser_page, live_server.url)
    await sign_in(page, key)
    state = row(page, ti_id).locator(".col-state")
    await expect(state).to_have_text("scheduled")
    await page.evaluate("() => { window.__sameDocument = 'yes'; }")

    # Queued as an orchestrator would: the page learns of it from the event stream.
    workload = await workloads.queue(ti_id)
    await expect(state).to_have_text("queued", timeout=LIVE_MS)
    worker = start_worker(
        workload, sys.executable, "-c", "import time; time.sleep(2)",
        env=worker_env(settings), api_url=f"{live_server.url}/execution", interval=0.3,
    )
    try:
        await expect(state).to_have_text("running", timeout=LIVE_MS)
        await expect(row(page, ti_id).locator(".col-host")).not_to_have_text("—")
        await expect(state).to_have_text("success", timeout=LIVE_MS)
        code, _out, err = await asyncio.to_thread(finish, worker, 30)
    finally:
        stop(worker)
    assert code == 0, err
    await expect(row(page, ti_id).locator(".col-duration")).to_have_text(re.compile(r"^\d+ s$"))
    # No reload: the document that signed in is the one that shows the outcome.
    assert await page.evaluate("() => window.__sameDocument") == "yes"
    assert (await fresh_ti(db, ti_id)).state == "success"
    await assert_clean(browser_page)


async def test_revoking_a_running_tasks_tokens_from_its_page_stops_its_worker(
    live_server, db, workloads, settings, browser_page
):
    ti_id = await workloads.new_ti("long_task")
    key = await operator_key(db, "oncall", Role.OPERATOR)
    worker = start_worker(
        await workloads.queue(ti_id), sys.executable, "-c", "import time; time.sleep(60)",
        env=worker_env(settings), api_url=f"{live_server.url}/execution", interval=0.3,
    )
    try:
        page = await open_ui(browser_page, live_server.url)
        await sign_in(page, key)
        state = row(page, ti_id).locator(".col-state")
        await expect(state).to_have_text("running", timeout=LIVE_MS)
        await row(page, ti_id).get_by_role("link").click()
        assert page.url.endswith(f"#/ti/{ti_id}")
        view = page.locator("#ti-view")
        await expect(view.locator("#ti-title")).to_contain_text("long_task")
        # Queueing set the watermark (tokens of earlier tries count no more); one workload
        # token has started it.
        await expect(view.locator("#ti-tokens")).to_contain_text("Workload tokens spent1")
        queued_mark = await view.locator("#watermark").get_attribute("datetime")
        assert queued_mark is not None
        # Its history, oldest first: created, queued, started.
        changes = view.locator("#history-rows tr td:first-child")
        await expect(changes).to_have_text(
            ["created → scheduled", "scheduled → queued", "queued → running"]
        )

        # The confirmation step: cancelling changes nothing.
        await view.get_by_role("button", name="Revoke tokens…").click()
        dialog = page.get_by_role("dialog", name="Revoke tokens?")
        await expect(dialog).to_be_visible()
        await dialog.get_by_role("button", name="Cancel").click()
        await expect(dialog).to_be_hidden()
        queued_at = datetime.fromisoformat(queued_mark).timestamp()
        assert (await fresh_ti(db, ti_id)).tokens_not_before == pytest.approx(queued_at, abs=0.002)

        await view.get_by_role("button", name="Revoke tokens…").click()
        async with page.expect_response(lambda r: r.url.endswith("/revoke-tokens")) as answer:
            await dialog.get_by_role("button", name="Revoke tokens", exact=True).click()
        response = await answer.value
        assert response.status == 200
        mark = (await response.json())["tokens_not_before"]
        # The page shows the new watermark, and the event of it in the history.
        shown = await view.locator("#watermark").get_attribute("datetime")
        assert shown is not None
        assert abs(datetime.fromisoformat(shown).timestamp() - mark) < 0.002
        assert datetime.fromisoformat(shown) > datetime.fromisoformat(queued_mark)
        await expect(view.locator("#revoke-status")).to_contain_text("Tokens revoked")
        await expect(changes.last).to_have_text("tokens revoked", timeout=LIVE_MS)
        await expect(view.locator("#history-rows tr").last).to_contain_text("oncall")

        # The worker's next heartbeat is refused: it stops its command and exits non-zero.
        code, _out, err = await asyncio.to_thread(finish, worker, 30)
    finally:
        stop(worker)
    assert code != 0, err
    assert "no longer ours" in err and "revoked" in err, err
    assert (await fresh_ti(db, ti_id)).tokens_not_before == pytest.approx(mark)
    await save_screenshot(page, "ui-task-instance.png")
    await assert_clean(browser_page)


async def test_a_readers_page_has_no_revoke_control_and_its_session_cannot_revoke(
    live_server, db, workloads, browser_page
):
    ti_id = await workloads.new_ti("report")
    # A value a worker reported may hold markup: it is shown as text, never run or parsed.
    markup = '<img src="x" onerror="window.__injected = 1"><b>worker-3</b>'
    await set_row(db, ti_id, hostname=markup)
    key = await operator_key(db, "auditor", Role.READER)
    page = await open_ui(browser_page, live_server.url)
    await sign_in(page, key)
    await expect(page.locator("#who-role")).to_have_text("reader")
    await expect(row(page, ti_id).locator(".col-host")).to_have_text(markup)
    await row(page, ti_id).get_by_role("link").click()
    view = page.locator("#ti-view")
    await expect(view.locator("#ti-tokens")).to_contain_text("never revoked")
    await expect(view.locator("#ti-fields")).to_contain_text(markup)
    await expect(view.locator("#history-rows tr")).to_have_count(1)
    # No revoke control at all: no button, no dialog, not even disabled.
    assert await page.get_by_role("button", name=re.compile("revoke", re.IGNORECASE)).count() == 0
    assert await page.locator("#revoke-open, #revoke-dialog, dialog").count() == 0
    assert "Revoke" not in await page.locator("body").inner_text()
    assert await page.locator("main img, main b").count() == 0
    assert await page.evaluate("() => window.__injected") is None

    # A forged request from the reader's page, CSRF token and all: the role decides.
    forged = await page_fetch(page, "POST", f"/control/v1/task-instances/{ti_id}/revoke-tokens")
    assert forged["status"] == 403 and forged["reason"] == "role_required", forged
    assert forged["body"]["detail"]["reason"] == "role_required"
    assert (await fresh_ti(db, ti_id)).tokens_not_before is None
    await assert_clean(browser_page)


async def test_a_change_made_with_the_cookie_needs_the_csrf_token(
    live_server, db, workloads, browser_page
):
    ti_id = await workloads.new_ti("task")
    key = await operator_key(db, "ops", Role.ADMIN)
    page = await open_ui(browser_page, live_server.url)
    await sign_in(page, key)
    revoke = f"/control/v1/task-instances/{ti_id}/revoke-tokens"
    for csrf in (None, "not-the-token"):
        refused = await page_fetch(page, "POST", revoke, csrf=csrf)
        assert refused["status"] == 403 and refused["reason"] == "csrf_token_required", refused
    # Nor can a request without it end the session.
    refused = await page_fetch(page, "DELETE", "/control/v1/sessions/current", csrf=None)
    assert refused["status"] == 403 and refused["reason"] == "csrf_token_required", refused
    assert (await fresh_ti(db, ti_id)).tokens_not_before is None
    still = await page_fetch(page, "GET", "/control/v1/sessions/current", csrf=None)
    assert still["status"] == 200 and still["body"]["name"] == "ops"
    # With the token, the same request is made.
    made = await page_fetch(page, "POST", revoke)
    assert made["status"] == 200, made
    mark = made["body"]["tokens_not_before"]
    assert (await fresh_ti(db, ti_id)).tokens_not_before == pytest.approx(mark)
    await assert_clean(browser_page)


async def test_stale_heartbeats_filters_and_the_keyboard(live_server, db, browser_page):
    now = datetime.now(UTC)
    etl = await new_run(
        db, "etl", "nightly-2026-12-04", ["extract", "transform", "load", "publish"], team="data"
    )
    reports = await new_run(db, "reports", "daily", ["render"], mapped={"render": 3})
    await set_row(db, etl[("extract", -1)], state="success", try_number=1, hostname="worker-1",
                  start_date=now - timedelta(minutes=6), end_date=now - timedelta(minutes=4),
                  last_heartbeat_at=now - timedelta(minutes=4))
    # Running, its worker silent for two minutes: stale.
    stale = etl[("transform", -1)]
    await set_row(db, stale, state="running", try_number=1, hostname="worker-2",
                  start_date=now - timedelta(minutes=4),
                  last_heartbeat_at=now - timedelta(minutes=2))
    # Running, its last heartbeat 20 s old: stale within seconds, without a reload.
    soon = etl[("load", -1)]
    await set_row(db, soon, state="running", try_number=1, hostname="worker-3",
                  start_date=now - timedelta(minutes=1),
                  last_heartbeat_at=now - timedelta(seconds=20))
    written = time.monotonic()
    await set_row(db, etl[("publish", -1)], state="queued", try_number=1)
    await set_row(db, reports[("render", 0)], state="failed", try_number=2, hostname="worker-4",
                  start_date=now - timedelta(minutes=3),
                  end_date=now - timedelta(minutes=2, seconds=48))
    fresh = reports[("render", 1)]
    await set_row(db, fresh, state="running", try_number=1, hostname="worker-5",
                  start_date=now - timedelta(seconds=40), last_heartbeat_at=now)
    await set_row(db, reports[("render", 2)], state="up_for_retry", try_number=1,
                  hostname="worker-4", start_date=now - timedelta(minutes=3),
                  end_date=now - timedelta(minutes=2))
    key = await operator_key(db, "sre", Role.OPERATOR)
    page = await open_ui(browser_page, live_server.url)
    await sign_in(page, key)
    await expect(page.locator("#ti-rows tr")).to_have_count(7)

    # Marked with a class and a text, not colour alone; a fresh heartbeat and ended TIs not.
    await expect(row(page, stale)).to_have_class(re.compile(r"\bstale\b"))
    await expect(row(page, stale).locator(".col-heartbeat")).to_contain_text("stale")
    await expect(row(page, stale).locator(".col-state")).to_have_text("running")
    for ti_id in (fresh, etl[("extract", -1)], reports[("render", 0)]):
        await expect(row(page, ti_id)).not_to_have_class(re.compile(r"\bstale\b"))
        await expect(row(page, ti_id).locator(".badge-stale")).to_have_count(0)
    if time.monotonic() - written < STALE_AFTER_SECONDS - 20 - 2:
        assert "stale" not in (await row(page, soon).get_attribute("class") or "")
    await expect(row(page, soon)).to_have_class(re.compile(r"\bstale\b"), timeout=15_000)
    await expect(row(page, soon).locator(".col-heartbeat")).to_contain_text(
        re.compile(r"\d+ s ago stale")
    )
    await expect(row(page, fresh).locator(".col-duration")).to_contain_text("so far")
    await expect(row(page, reports[("render", 0)]).locator(".col-duration")).to_have_text("12 s")

    # Filters apply on change: a state, a team, a DAG typed in (Enter), then none.
    await page.get_by_label("State", exact=True).select_option("running")
    await expect(page.locator("#ti-rows tr")).to_have_count(3)
    await page.get_by_label("Team", exact=True).select_option("data")
    await expect(page.locator("#ti-rows tr")).to_have_count(2)
    await page.get_by_role("button", name="Clear filters").click()
    await expect(page.locator("#ti-rows tr")).to_have_count(7)
    await page.get_by_label("DAG", exact=True).fill("reports")
    await page.get_by_label("DAG", exact=True).press("Enter")
    await expect(page.locator("#ti-rows tr")).to_have_count(3)
    await page.get_by_role("button", name="Clear filters").click()
    await expect(page.locator("#ti-rows tr")).to_have_count(7)
    await expect(page.locator("#list-status")).to_have_text("7 task instances")
    await save_screenshot(page, "ui-task-instances.png")

    # The keyboard alone: Tab to a task instance's link, Enter opens its page.
    target = etl[("extract", -1)]
    await page.evaluate("() => document.activeElement.blur()")  # from the top of the page
    for _ in range(40):
        await page.keyboard.press("Tab")
        focused = await page.evaluate("() => document.activeElement.getAttribute('href')")
        if focused == f"#/ti/{target}":
            break
    else:
        raise AssertionError("no Tab reached the task instance's link")
    outline = await page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused link shows no focus"
    await page.keyboard.press("Enter")
    await expect(page.locator("#ti-view")).to_be_visible()
    assert page.url.endswith(f"#/ti/{target}")
    await expect(page.locator("#ti-title")).to_contain_text("extract")
    await expect(page.locator("#ti-fields")).to_contain_text("success")
    # An operator's page has the control; Escape closes its confirmation.
    await page.locator("#revoke-open").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("dialog")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_be_hidden()
    # Back to the list, which the stream kept current.
    await page.go_back()
    await expect(page.locator("#list-view")).to_be_visible()
    await expect(page.locator("#ti-rows tr")).to_have_count(7)
    assert (await fresh_ti(db, target)).tokens_not_before is None
    await assert_clean(browser_page)


async def test_a_phone_sized_screen(live_server, db, browser):
    run = await new_run(db, "warehouse_nightly_load", "scheduled__2026-12-04T00:00:00+00:00",
                        ["extract_orders", "transform"], mapped={"extract_orders": 2})
    now = datetime.now(UTC)
    await set_row(db, run[("extract_orders", 0)], state="running", try_number=1,
                  hostname="worker-eu-west-1a-7f9c", start_date=now - timedelta(minutes=2),
                  last_heartbeat_at=now)
    key = await operator_key(db, "phone", Role.OPERATOR)
    async with local_page(browser, viewport=PHONE, is_mobile=True, has_touch=True) as phone:
        page = await open_ui(phone, live_server.url)
        overflow = ("() => document.documentElement.scrollWidth"
                    " - document.documentElement.clientWidth")
        assert await page.evaluate(overflow) <= 0
        await sign_in(page, key)
        await expect(page.locator("#ti-rows tr")).to_have_count(3)
        # One card per task instance: nothing wider than the screen, the page does not
        # scroll sideways, and each value is there with its column's name.
        assert await page.evaluate(overflow) <= 0
        card = row(page, run[("extract_orders", 0)])
        for cell in (card.get_by_role("link"), card.locator(".col-state"),
                     card.locator(".col-heartbeat")):
            box = await cell.bounding_box()
            assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
        await expect(card.locator(".col-state")).to_have_text("running")
        assert await card.locator(".col-host").evaluate(
            "node => getComputedStyle(node, '::before').content"
        ) == '"Hostname"'
        await save_screenshot(page, "ui-phone.png")
        await row(page, run[("extract_orders", 0)]).get_by_role("link").click()
        await expect(page.locator("#ti-fields")).to_contain_text("worker-eu-west-1a-7f9c")
        assert await page.evaluate(overflow) <= 0
        # The other views: their charts and tables fit too (a table scrolls in its box).
        assert await heartbeat(live_server.url, run[("transform", -1)], "not-a-token") == 403
        await refusals_recorded(live_server.url, key, 1)
        await page.get_by_role("link", name="Refusals").click()
        await expect(page.locator("#refusals-total")).to_have_text("1")
        await expect(page.locator("#by-route li")).to_have_count(1)
        assert await page.evaluate(overflow) <= 0
        box = await page.locator("#by-route .bar-count").bounding_box()
        assert box is not None and box["x"] + box["width"] <= PHONE["width"]
        await page.get_by_role("link", name="Health").click()
        await expect(page.locator("#replica-rows tr.this-replica")).to_have_count(1)
        assert await page.evaluate(overflow) <= 0
        await assert_clean(phone)


async def test_the_refusals_view(live_server, db, workloads, browser_page):
    ti_a = await workloads.new_ti("extract")
    ti_b = await workloads.new_ti("load")
    key = await operator_key(db, "sec", Role.OPERATOR)
    page = await open_ui(browser_page, live_server.url)
    await sign_in(page, key)
    nav = page.get_by_role("navigation", name="Views")
    await expect(nav.get_by_role("link", name="Task instances")).to_have_attribute(
        "aria-current", "page"
    )
    # None yet: the empty state.
    await nav.get_by_role("link", name="Refusals").click()
    assert page.url.endswith("#/refusals")
    await expect(page.locator("#refusals-view")).to_be_visible()
    await expect(nav.get_by_role("link", name="Refusals")).to_have_attribute("aria-current", "page")
    assert await nav.get_by_role("link", name="Task instances").get_attribute("aria-current") is None
    await expect(page.locator("#refusals-empty")).to_be_visible()
    await expect(page.locator("#refusals-body")).to_be_hidden()

    # Two garbage tokens, and TI A's real execution token sent to TI B's heartbeat.
    token_a = await run_ti(db, live_server.url, ti_a)
    assert await heartbeat(live_server.url, ti_b, "not-a-token") == 403
    assert await heartbeat(live_server.url, ti_a, "not-a-token-either") == 403
    assert await heartbeat(live_server.url, ti_b, token_a) == 403
    summary = await refusals_recorded(live_server.url, key, 3)
    counts = {item["reason"]: item["count"] for item in summary["by_reason"]}
    assert sorted(counts.values()) == [1, 2], counts

    # The view reads them again within 10 s, without a reload.
    await expect(page.locator("#refusals-total")).to_have_text("3", timeout=15_000)
    await expect(page.locator("#refusals-empty")).to_be_hidden()
    bars = page.locator("#by-reason li")
    await expect(bars).to_have_count(len(counts))
    for reason, count in counts.items():
        bar = page.locator(f'#by-reason li[data-label="{reason}"]')
        await expect(bar.locator(".bar-label")).to_have_text(reason)
        await expect(bar.locator(".bar-count")).to_have_text(str(count))
        width = await bar.locator(".bar-fill").evaluate("node => node.getBoundingClientRect().width")
        assert width > 0
    widths = {
        reason: await page.locator(f'#by-reason li[data-label="{reason}"] .bar-fill').evaluate(
            "node => node.getBoundingClientRect().width")
        for reason in counts
    }
    most = max(counts, key=lambda reason: counts[reason])
    least = min(counts, key=lambda reason: counts[reason])
    assert widths[least] == pytest.approx(widths[most] / 2, abs=2)
    # By route: the method and the route's template, never the concrete path.
    heartbeat_route = "PUT /execution/task-instances/{task_instance_id}/heartbeat"
    await expect(page.locator("#by-route li")).to_have_count(1)
    route = page.locator(f'#by-route li[data-label="{heartbeat_route}"]')
    await expect(route.locator(".bar-label")).to_have_text(heartbeat_route)
    await expect(route.locator(".bar-count")).to_have_text("3")

    # The latest, newest first: the refusal with a token read links to TI A's page.
    rows = page.locator("#refusals-rows tr")
    await expect(rows).to_have_count(3)
    await expect(rows.first).to_contain_text("403")
    await expect(rows.first).to_contain_text("PUT ")
    link = rows.first.get_by_role("link")
    await expect(link).to_have_attribute("href", f"#/ti/{ti_a}")
    await expect(link).to_have_text("dag / extract")
    await expect(rows.nth(1)).to_contain_text("no token read")
    await expect(rows.nth(2)).to_contain_text("no token read")
    await save_screenshot(page, "ui-refusals.png")

    await link.click()
    await expect(page.locator("#ti-view")).to_be_visible()
    assert page.url.endswith(f"#/ti/{ti_a}")
    await expect(page.locator("#ti-title")).to_contain_text("extract")
    await expect(nav.get_by_role("link", name="Task instances")).to_have_attribute(
        "aria-current", "page"
    )
    await assert_clean(browser_page)


async def test_the_health_view(live_server, db, browser_page):
    key = await operator_key(db, "sre", Role.READER)
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        jwks = (await http.get("/.well-known/jwks.json")).json()
    kids = [item["kid"] for item in jwks["keys"]]
    health = await control_get(live_server.url, key, "/health")
    page = await open_ui(browser_page, live_server.url)
    await sign_in(page, key)
    # The keyboard: Tab from the page's first link reaches the navigation's, Enter follows it.
    await page.locator(".brand").focus()
    for _ in range(5):
        await page.keyboard.press("Tab")
        if await page.evaluate("() => document.activeElement.getAttribute('href')") == "#/health":
            break
    else:
        raise AssertionError("no Tab reached the Health link")
    await page.keyboard.press("Enter")
    await expect(page.locator("#health-view")).to_be_visible()
    assert page.url.endswith("#/health")
    await expect(page.get_by_role("navigation", name="Views").get_by_role(
        "link", name="Health")).to_have_attribute("aria-current", "page")
    await expect(page.locator("#health-database")).to_have_text("ok")
    kid = page.locator("#signing-kid")
    await expect(kid).to_have_text(health["signing_key"]["kid"])
    assert await kid.inner_text() in kids
    if len(kids) == 1:
        assert await kid.inner_text() == kids[0]
    await expect(page.locator("#accepted-keys li")).to_have_count(len(health["accepted_keys"]))
    await expect(page.locator("#keys-note")).to_contain_text(
        "rotation" if len(health["accepted_keys"]) > 1 else "no key rotation"
    )
    await expect(page.locator("#replica-rows tr")).to_have_count(len(health["replicas"]))
    this = page.locator("#replica-rows tr.this-replica")
    await expect(this).to_have_count(1)
    await expect(this).to_contain_text("this replica")
    await expect(this).to_have_attribute("data-replica-id", health["this_replica"])
    await expect(page.locator("#replica-rows")).to_contain_text("this replica")
    assert await page.locator("#replica-rows .badge-this").count() == 1
    await save_screenshot(page, "ui-health.png")
    await assert_clean(browser_page)


async def test_a_task_instances_token_expiry_refusals_and_xcom_keys(
    live_server, db, workloads, browser_page
):
    ti_id = await workloads.new_ti("extract")
    other = await workloads.new_ti("load")
    key = await operator_key(db, "oncall", Role.OPERATOR)
    page = await open_ui(browser_page, live_server.url)
    await sign_in(page, key)
    await row(page, ti_id).get_by_role("link").click()
    view = page.locator("#ti-view")
    # Not started: no token, no refusal, no XCom.
    await expect(view.locator("#ti-tokens")).to_contain_text("Newest token expiresno token issued")
    await expect(view.locator("#ti-refusals-empty")).to_be_visible()
    await expect(view.locator("#ti-xcoms-empty")).to_be_visible()

    token = await run_ti(db, live_server.url, ti_id)
    async with httpx.AsyncClient(base_url=f"{live_server.url}/execution") as http:
        pushed = await http.post(f"/xcoms/dag/{(await workloads.ti(ti_id)).run_id}/extract/row_count",
                                 json={"secret-ish": "value-not-shown"}, headers=bearer(token))
    assert pushed.status_code == 201, pushed.text
    # Its token sent to another TI's heartbeat, twice: refused, and counted for this TI.
    for _ in range(2):
        assert await heartbeat(live_server.url, other, token) == 403
    summary = await refusals_recorded(live_server.url, key, 2, ti_id=str(ti_id))
    expires = (await control_get(live_server.url, key, f"/task-instances/{ti_id}"))["token_expires_at"]
    assert expires is not None

    # Away and back: the page reads it all again.
    await page.get_by_role("navigation", name="Views").get_by_role("link", name="Task instances").click()
    await expect(page.locator("#list-view")).to_be_visible()
    await page.go_back()
    await expect(view).to_be_visible()
    await expect(view.locator("#ti-fields")).to_contain_text("running")
    expiry = view.locator("#token-expiry")
    shown = await expiry.get_attribute("datetime")
    assert shown is not None
    assert abs(datetime.fromisoformat(shown).timestamp() - expires) < 1
    await expect(view.locator("#ti-tokens")).to_contain_text(re.compile(r"\(in \d+ (s|min|h)"))

    reason = summary["by_reason"][0]["reason"]
    await expect(view.locator("#ti-refusals-reasons li")).to_have_count(1)
    await expect(view.locator("#ti-refusals-reasons li")).to_have_text(f"{reason}: 2")
    await expect(view.locator("#ti-refusals-rows tr")).to_have_count(2)
    await expect(view.locator("#ti-refusals-rows tr").first).to_contain_text("PUT ")
    await expect(view.locator("#ti-refusals-empty")).to_be_hidden()

    await expect(view.locator("#ti-xcoms li")).to_have_text(["row_count"])
    await expect(view.locator("#ti-xcoms-empty")).to_be_hidden()
    assert "value-not-shown" not in await page.locator("body").inner_text()
    await assert_clean(browser_page)
