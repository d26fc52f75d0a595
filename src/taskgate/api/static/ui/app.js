// The taskgate operator page (/ui): task instances, live, and revoking a task instance's
// tokens. Plain JavaScript, no framework, no build step.
//
// Everything it shows it reads from the control API (/control/v1) with the browser
// session of docs/control.md, "Browser sessions": the operator key is sent once, to start
// the session, and never kept; the session is an HttpOnly cookie this script cannot
// read; the CSRF token that every change must carry lives in a variable of this script
// only. Values come from workers and may hold markup, so they are only ever written as
// text (textContent, DOM building), never as HTML.
"use strict";

(() => {
  const API = "/control/v1";
  // A running task instance whose last heartbeat is older than this is marked stale.
  const STALE_AFTER_SECONDS = 30;
  const LIST_LIMIT = 500; // task instances shown at once (the API answers at most 1000)
  const HISTORY_PAGE = 1000;
  const HISTORY_MAX_PAGES = 20;
  const TICK_MS = 1000; // relative times are redrawn this often
  // Heartbeats are no events: running task instances are read again this often.
  const HEARTBEAT_POLL_MS = 10000;
  const BATCH_MS = 150; // changed task instances are fetched together after this pause
  const FULL_RELOAD_AFTER = 50; // more changed at once than this: reload the whole list
  const RECONNECT_MS = 3000; // a stream the server refused is tried again after this
  const STATES = [
    "scheduled", "queued", "running", "success", "failed", "up_for_retry",
    "up_for_reschedule", "deferred", "awaiting_input", "restarting", "skipped",
    "upstream_failed", "removed",
  ];
  // The table's columns (as its header in index.html): class suffix, header text.
  const COLUMNS = [
    ["dag", "DAG"], ["run", "Run"], ["task", "Task"], ["map", "Map index"], ["state", "State"],
    ["try", "Try"], ["host", "Hostname"], ["duration", "Duration"], ["heartbeat", "Last heartbeat"],
  ];
  const STREAM_EVENTS = ["ti.state", "ti.revoked", "operator.action"];
  const REVOKING_ROLES = new Set(["operator", "admin"]);
  const VIEWS = ["sign-in-view", "list-view", "ti-view", "refusals-view", "health-view"];
  const PANEL_REFRESH_MS = 10000; // refusals, health and a TI's extras are read this often
  const TI_REFUSALS_LATEST = 10;

  // ---- State -------------------------------------------------------------------------

  let csrfToken = null; // the session's CSRF token (never stored anywhere else)
  let who = null; // {name, role, teams} of the session; null when signed out
  const dagTeams = new Map(); // dag_id -> team (null: no team)
  const rows = new Map(); // ti id -> {ti, tr, cells}
  const filters = { dag_id: "", run_id: "", state: "", team: "" };
  let listGeneration = 0; // a newer list load makes an older answer moot
  let listLoading = false;
  let listLoaded = false; // the list has been read since signing in (or filtering)
  let listTruncated = false; // the last read answered LIST_LIMIT rows: there may be more
  const changedWhileLoading = new Set();
  const pending = new Set(); // ti ids to fetch again (events named them)
  let pendingTimer = null;
  let stream = null; // the EventSource
  let lastEventId = 0; // the newest event seen: where a new stream resumes
  let reconnectTimer = null;
  let current = null; // the task instance view: {id, ti, history: Map(event id -> event)}
  let detailTimer = null;
  // Each read of a task instance is numbered when it starts: an answer older than what a
  // row already shows is dropped (reads may overtake each other).
  let readSeq = 0;
  let lastPoll = 0;
  let polling = false;
  let revokeDialog = null; // made on first use, for operators and admins only
  let shownView = null; // the id of the view shown
  let panelTimer = null; // refreshes the refusals, health or TI extras shown
  let panelGeneration = 0; // a newer view makes an older answer moot

  const $ = (id) => document.getElementById(id);

  // ---- Small helpers -----------------------------------------------------------------

  /** An element with a class and text (both optional). */
  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function showError(node, error) {
    node.textContent = describe(error);
    show(node, true);
  }

  function clearError(node) {
    node.textContent = "";
    show(node, false);
  }

  /** An API refusal as the server put it: "message (reason)". */
  function describe(error) {
    if (error instanceof ApiError) {
      return error.reason ? `${error.message} (${error.reason})` : error.message;
    }
    return String(error && error.message ? error.message : error);
  }

  /** A server time (ISO 8601) as a Date; null for none. */
  function parseTime(value) {
    if (!value) return null;
    const text = /(Z|[+-]\d\d:?\d\d)$/.test(value) ? value : `${value}Z`;
    const date = new Date(text);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  /** "2026-12-04 19:40:12 UTC" (with milliseconds if asked). */
  function formatTime(date, withMs = false) {
    const iso = date.toISOString();
    return `${iso.slice(0, 10)} ${iso.slice(11, withMs ? 23 : 19)} UTC`;
  }

  /** A span of milliseconds, to the second: "42 s", "3 min 5 s", "2 h 4 min", "3 d 2 h". */
  function formatSpan(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return `${s} s`;
    let m = Math.floor(s / 60);
    s %= 60;
    if (m < 60) return `${m} min ${s} s`;
    let h = Math.floor(m / 60);
    m %= 60;
    if (h < 24) return `${h} h ${m} min`;
    const d = Math.floor(h / 24);
    h %= 24;
    return `${d} d ${h} h`;
  }

  /** A <time> element for a date, its text given (the exact time is its tooltip). */
  function timeElement(date, text, withMs = false) {
    const node = el("time", null, text === undefined ? formatTime(date, withMs) : text);
    node.dateTime = date.toISOString();
    node.title = formatTime(date, withMs);
    return node;
  }

  function stateElement(state) {
    const name = state || "none";
    return el("span", `state state-${name.replace(/[^a-z_]/g, "")}`, name);
  }

  function mapIndexText(ti) {
    if (ti.rendered_map_index) return ti.rendered_map_index;
    return ti.map_index >= 0 ? String(ti.map_index) : "—";
  }

  function tiLabel(ti) {
    const index = ti.map_index >= 0 ? ` [${mapIndexText(ti)}]` : "";
    return `${ti.task_id}${index}`;
  }

  function durationText(ti, now) {
    const start = parseTime(ti.start_date);
    if (!start) return "—";
    const end = parseTime(ti.end_date);
    if (end) return formatSpan(end - start);
    return ti.state === "running" ? `${formatSpan(now - start)} so far` : "—";
  }

  /** Whether a running TI's heartbeat is overdue (none at all counts from its start). */
  function isStale(ti, now) {
    if (ti.state !== "running") return false;
    const beat = parseTime(ti.last_heartbeat_at) || parseTime(ti.start_date);
    return beat !== null && now - beat > STALE_AFTER_SECONDS * 1000;
  }

  /** "12 s ago", and a "stale" badge (text, not colour alone) when it is overdue. */
  function fillHeartbeat(cell, ti, now) {
    const beat = parseTime(ti.last_heartbeat_at);
    const stale = isStale(ti, now);
    cell.replaceChildren();
    if (beat) {
      cell.append(timeElement(beat, `${formatSpan(now - beat)} ago`));
    } else {
      cell.append("—");
    }
    if (stale) {
      cell.append(" ", el("span", "badge badge-stale", "stale"));
      cell.title = `No heartbeat for more than ${STALE_AFTER_SECONDS} s while running`;
    } else {
      cell.removeAttribute("title");
    }
    return stale;
  }

  // ---- The control API ---------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, reason, message, detail) {
      super(message);
      this.status = status;
      this.reason = reason;
      this.detail = detail;
    }
  }

  /** One control API call with the session cookie; the CSRF token on every change. A
   * refusal throws an ApiError with the server's reason and message; a 401 while signed
   * in means the session has ended, and the page goes back to signing in. */
  async function api(method, path, { headers = {}, body, onHeaders } = {}) {
    const init = {
      method,
      headers: { Accept: "application/json", ...headers },
      credentials: "same-origin",
      cache: "no-store",
    };
    if (!["GET", "HEAD"].includes(method) && csrfToken) init.headers["X-CSRF-Token"] = csrfToken;
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, init);
    } catch (error) {
      throw new ApiError(0, "network_error", "The server could not be reached");
    }
    const text = response.status === 204 ? "" : await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch (error) {
      data = null;
    }
    if (response.ok) {
      if (onHeaders) onHeaders(response.headers);
      return data;
    }
    const detail = data && data.detail;
    let reason = response.headers.get("Taskgate-Reason") || "";
    let message = "";
    if (detail && typeof detail === "object" && !Array.isArray(detail)) {
      reason = detail.reason || reason;
      message = detail.message || "";
    } else if (typeof detail === "string") {
      message = detail;
    } else if (Array.isArray(detail)) {
      message = detail.map((item) => (item && item.msg) || String(item)).join("; ");
    }
    const error = new ApiError(
      response.status, reason, message || `${response.status} ${response.statusText}`, detail,
    );
    if (response.status === 401 && who && !path.startsWith("/sessions")) sessionEnded(error);
    throw error;
  }

  // ---- Signing in and out ------------------------------------------------------------

  function showView(id) {
    for (const view of VIEWS) show($(view), view === id);
    show($("loading"), false);
    shownView = id;
    panelGeneration += 1;
    // The navigation marks the view shown (a task instance belongs to the list).
    const navView = id === "ti-view" ? "list-view" : id;
    for (const link of document.querySelectorAll("#nav a")) {
      if (link.dataset.view === navView) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
  }

  function focusHeading(id) {
    const heading = $(id);
    heading.tabIndex = -1;
    heading.focus();
  }

  function showSignIn(error) {
    show($("who"), false);
    show($("nav"), false);
    showView("sign-in-view");
    if (error) showError($("sign-in-error"), error);
    else clearError($("sign-in-error"));
    $("key").focus();
  }

  async function signIn(event) {
    event.preventDefault();
    const input = $("key");
    const key = input.value.trim();
    if (!key) {
      showError($("sign-in-error"), "Enter an operator key.");
      input.focus();
      return;
    }
    const button = $("sign-in-button");
    button.disabled = true;
    try {
      // The credential itself, in a header, once: the answer sets the session cookie.
      const session = await api("POST", "/sessions", {
        headers: { Authorization: `Bearer ${key}` },
      });
      input.value = "";
      clearError($("sign-in-error"));
      await startApp(session);
      // Focus moves to the view now shown (the form it was in is gone).
      const heading = document.querySelector(".view:not([hidden]) h1");
      if (heading) {
        heading.tabIndex = -1;
        heading.focus();
      }
    } catch (error) {
      showError($("sign-in-error"), error);
      input.focus();
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    const button = $("sign-out");
    button.disabled = true;
    stopStream();
    try {
      await api("DELETE", "/sessions/current");
    } catch (error) {
      if (error.status !== 401) {
        // Still signed in (the server could not be reached...): say so, keep following.
        button.disabled = false;
        showError($("app-error"), new ApiError(error.status, error.reason,
          `Sign out failed: ${error.message}`));
        startStream();
        return;
      }
    }
    button.disabled = false;
    clearError($("app-error"));
    resetApp();
    showSignIn();
  }

  /** The session has ended (signed out elsewhere, expired, operator revoked). */
  function sessionEnded(error) {
    resetApp();
    showSignIn(new ApiError(error.status, error.reason,
      `Your session has ended: sign in again. ${error.message}`));
  }

  function resetApp() {
    stopStream();
    if (panelTimer !== null) window.clearInterval(panelTimer);
    panelTimer = null;
    panelGeneration += 1;
    who = null;
    csrfToken = null;
    current = null;
    rows.clear();
    dagTeams.clear();
    pending.clear();
    $("ti-rows").replaceChildren();
    listLoaded = false;
    lastEventId = 0;
    listGeneration += 1;
    // The next operator starts afresh: no filters, no revoke control left behind.
    $("filters").reset();
    readFilters();
    $("revoke-area").replaceChildren();
    if (revokeDialog) revokeDialog.remove();
    revokeDialog = null;
  }

  async function startApp(session) {
    csrfToken = session.csrf_token;
    who = { name: session.name, role: session.role, teams: session.teams || [] };
    $("who-name").textContent = who.name;
    $("who-role").textContent = who.role;
    $("who-teams").textContent = who.teams.length ? `, teams ${who.teams.join(", ")}` : "";
    show($("who"), true);
    show($("nav"), true);
    showView(null);
    show($("loading"), true);
    try {
      await loadDags();
      // Where the live stream starts: after the newest event there is now (the list
      // read after this is at least as new; an event in between is applied twice).
      lastEventId = await newestEventId();
    } catch (error) {
      if (!who) return; // signed out meanwhile
      show($("loading"), false);
      showView("list-view");
      showError($("list-error"), error);
    }
    if (!who) return;
    startStream();
    if (panelTimer === null) panelTimer = window.setInterval(refreshPanels, PANEL_REFRESH_MS);
    route();
  }

  // ---- Routing: #/ (the list) and #/ti/<id> ------------------------------------------

  function route(event) {
    if (!who) return;
    const hash = window.location.hash;
    const match = /^#\/ti\/([0-9a-fA-F-]{36})$/.exec(hash);
    if (match) {
      showTiView(match[1].toLowerCase());
      return;
    }
    current = null;
    if (hash === "#/refusals") showRefusalsView();
    else if (hash === "#/health") showHealthView();
    else showListView();
    // Followed a link: focus moves to the heading of the view now shown.
    if (event) {
      const heading = document.querySelector(".view:not([hidden]) h1");
      if (heading) focusHeading(heading.id);
    }
  }

  /** Every PANEL_REFRESH_MS: read again what the view shown holds. */
  function refreshPanels() {
    if (!who) return;
    if (shownView === "refusals-view") loadRefusals();
    else if (shownView === "health-view") loadHealth();
    else if (shownView === "ti-view" && current && current.ti) loadTiExtras(current);
  }

  // ---- Task instances (the list) -----------------------------------------------------

  async function loadDags() {
    const dags = await api("GET", "/dags");
    dagTeams.clear();
    for (const dag of dags) dagTeams.set(dag.dag_id, dag.team);
    const options = $("dag-options");
    options.replaceChildren(...[...dagTeams.keys()].sort().map((id) => {
      const option = el("option");
      option.value = id;
      return option;
    }));
    const teams = new Set(who.teams);
    for (const team of dagTeams.values()) if (team) teams.add(team);
    fillSelect($("filter-team"), [...teams].sort(), filters.team);
  }

  function fillSelect(select, values, selected) {
    const options = [el("option", null, "any")];
    options[0].value = "";
    for (const value of values) {
      const option = el("option", null, value);
      option.value = value;
      options.push(option);
    }
    if (selected && !values.includes(selected)) {
      const option = el("option", null, selected);
      option.value = selected;
      options.push(option);
    }
    select.replaceChildren(...options);
    select.value = selected || "";
  }

  function showListView() {
    showView("list-view");
    document.title = "Task instances · taskgate";
    // Kept up to date by the stream while another view was shown: no need to read it again.
    if (!listLoaded) loadList();
  }

  function readFilters() {
    filters.dag_id = $("filter-dag").value.trim();
    filters.run_id = $("filter-run").value.trim();
    filters.state = $("filter-state").value;
    filters.team = $("filter-team").value;
  }

  async function loadList() {
    const generation = ++listGeneration;
    const query = new URLSearchParams({ limit: String(LIST_LIMIT) });
    for (const [name, value] of Object.entries(filters)) if (value) query.set(name, value);
    const seq = ++readSeq;
    listLoading = true;
    changedWhileLoading.clear();
    $("list-status").textContent = "Loading task instances…";
    clearError($("list-error"));
    let tis;
    try {
      tis = await api("GET", `/task-instances?${query}`);
    } catch (error) {
      if (generation !== listGeneration) return;
      listLoading = false;
      $("list-status").textContent = "";
      showError($("list-error"), error);
      return;
    }
    if (generation !== listGeneration) return;
    listLoading = false;
    rows.clear();
    $("ti-rows").replaceChildren();
    for (const ti of tis) upsertRow(ti, seq);
    listLoaded = true;
    listTruncated = tis.length >= LIST_LIMIT;
    updateListStatus();
    // What changed while the list was read may be newer than the list: read it again.
    for (const id of changedWhileLoading) pending.add(id);
    changedWhileLoading.clear();
    if (pending.size) schedulePending();
  }

  function updateListStatus() {
    const count = rows.size;
    let text = `${count} task instance${count === 1 ? "" : "s"}`;
    if (listTruncated) text += ` (the first ${LIST_LIMIT}: narrow the filters to see others)`;
    $("list-status").textContent = text;
    show($("list-empty"), count === 0);
  }

  function matchesFilters(ti) {
    if (filters.dag_id && ti.dag_id !== filters.dag_id) return false;
    if (filters.run_id && ti.run_id !== filters.run_id) return false;
    if (filters.state && ti.state !== filters.state) return false;
    if (filters.team && dagTeams.get(ti.dag_id) !== filters.team) return false;
    return true;
  }

  /** The list's order, as the API's: DAG, run, task, map index. */
  function compareTis(a, b) {
    for (const key of ["dag_id", "run_id", "task_id"]) {
      if (a[key] !== b[key]) return a[key] < b[key] ? -1 : 1;
    }
    return a.map_index - b.map_index;
  }

  function buildRow(ti) {
    const tr = el("tr");
    tr.dataset.tiId = ti.id;
    const cells = {};
    for (const [name, label] of COLUMNS) {
      cells[name] = el("td", `col-${name}`);
      cells[name].dataset.label = label; // a phone's layout shows it before the value
      tr.append(cells[name]);
    }
    // The task links to the task instance's own view (a link: keyboard reachable).
    cells.link = el("a", "ti-link");
    cells.link.href = `#/ti/${encodeURIComponent(ti.id)}`;
    cells.task.append(cells.link);
    return { ti, tr, cells };
  }

  function renderRow(entry, now = Date.now()) {
    const { ti, cells } = entry;
    cells.dag.textContent = ti.dag_id;
    cells.run.textContent = ti.run_id;
    cells.link.textContent = ti.task_id;
    cells.link.setAttribute("aria-label", `${tiLabel(ti)} in ${ti.dag_id} / ${ti.run_id}: ${ti.state}`);
    cells.map.textContent = mapIndexText(ti);
    cells.state.replaceChildren(stateElement(ti.state));
    cells.try.textContent = ti.try_number;
    cells.host.textContent = ti.hostname || "—";
    renderRowTimes(entry, now);
  }

  function renderRowTimes(entry, now) {
    entry.cells.duration.textContent = durationText(entry.ti, now);
    const stale = fillHeartbeat(entry.cells.heartbeat, entry.ti, now);
    entry.tr.classList.toggle("stale", stale);
  }

  /** Insert the TI's row at its place, or update the row it has (unless the row shows
   * a newer read already). */
  function upsertRow(ti, seq) {
    let entry = rows.get(ti.id);
    if (entry) {
      if (seq < entry.seq) return;
      entry.ti = ti;
    } else {
      entry = buildRow(ti);
      rows.set(ti.id, entry);
      const body = $("ti-rows");
      let before = null;
      for (const row of body.children) {
        const other = rows.get(row.dataset.tiId);
        if (other && compareTis(ti, other.ti) < 0) {
          before = row;
          break;
        }
      }
      body.insertBefore(entry.tr, before);
    }
    entry.seq = seq;
    entry.tr.dataset.state = ti.state;
    renderRow(entry);
  }

  function removeRow(id) {
    const entry = rows.get(id);
    if (!entry) return;
    entry.tr.remove();
    rows.delete(id);
  }

  function onFiltersChanged() {
    if (!who) return;
    readFilters();
    loadList();
  }

  // ---- Live updates: the event stream ------------------------------------------------

  /** The id of the newest event there is now (0: none): the resume point the server
   * names for an answer that starts after it. */
  async function newestEventId() {
    let resume = null;
    await api("GET", "/events?follow=false&from_now=true&limit=1", {
      onHeaders: (headers) => { resume = headers.get("Taskgate-Resume-After"); },
    });
    return resume === null ? 0 : Number(resume);
  }

  function setLive(on, text) {
    const live = $("live");
    live.textContent = text || (on ? "Live" : "Live updates off");
    live.classList.toggle("live-on", on);
    live.classList.toggle("live-off", !on);
  }

  function startStream() {
    stopStream();
    const url = `${API}/events${lastEventId ? `?after=${lastEventId}` : ""}`;
    const source = new EventSource(url); // same origin: it sends the session cookie
    stream = source;
    for (const kind of STREAM_EVENTS) source.addEventListener(kind, onStreamEvent);
    source.addEventListener("open", () => {
      if (stream === source) setLive(true);
    });
    source.addEventListener("error", () => {
      if (stream !== source) return;
      if (source.readyState === EventSource.CLOSED) {
        // The server refused the stream (session ended, events expired...): find out why.
        source.close();
        stream = null;
        setLive(false, "Live updates stopped; retrying…");
        reconnectTimer = window.setTimeout(restartStream, RECONNECT_MS);
      } else {
        setLive(false, "Reconnecting…"); // the browser resumes by itself (Last-Event-ID)
      }
    });
  }

  function stopStream() {
    if (reconnectTimer !== null) window.clearTimeout(reconnectTimer);
    reconnectTimer = null;
    if (stream) stream.close();
    stream = null;
    setLive(false);
  }

  async function restartStream() {
    reconnectTimer = null;
    if (!who) return;
    try {
      // A 401 here signs the page out (api); a resume point past the retention (410)
      // means events were missed: start again from now, with the list read afresh.
      await api("GET", `/events?follow=false&limit=1${lastEventId ? `&after=${lastEventId}` : ""}`);
    } catch (error) {
      if (!who) return;
      if (error.status === 410) {
        try {
          lastEventId = await newestEventId();
        } catch (again) {
          reconnectTimer = window.setTimeout(restartStream, RECONNECT_MS);
          return;
        }
        loadList();
      } else {
        reconnectTimer = window.setTimeout(restartStream, RECONNECT_MS);
        return;
      }
    }
    if (who) startStream();
  }

  function onStreamEvent(message) {
    const id = Number(message.lastEventId);
    if (id > lastEventId) lastEventId = id;
    let data;
    try {
      data = JSON.parse(message.data);
    } catch (error) {
      return;
    }
    if (message.type === "operator.action") {
      // A DAG registered or moved to another team: the filters' choices change.
      if (typeof data.action === "string" && data.action.startsWith("dag.")) {
        loadDags().catch(() => {});
      }
      return;
    }
    const tiId = data.ti_id;
    if (!tiId) return;
    if (current && current.id === tiId) onCurrentTiEvent({ id, event: message.type, data });
    // A TI's DAG and run never change: one outside those filters never enters the list.
    if (filters.dag_id && data.dag_id !== filters.dag_id) return;
    if (filters.run_id && data.run_id !== filters.run_id) return;
    if (listLoading) changedWhileLoading.add(tiId);
    pending.add(tiId);
    schedulePending();
  }

  function schedulePending() {
    if (pendingTimer === null) pendingTimer = window.setTimeout(fetchPending, BATCH_MS);
  }

  /** Fetch again the task instances that events named; update, insert or drop rows. */
  async function fetchPending() {
    pendingTimer = null;
    const ids = [...pending];
    pending.clear();
    if (!who || !ids.length) return;
    if (ids.length > FULL_RELOAD_AFTER) {
      loadList();
      return;
    }
    const generation = listGeneration;
    await Promise.all(ids.map(async (id) => {
      const seq = ++readSeq;
      let ti;
      try {
        ti = await api("GET", `/task-instances/${encodeURIComponent(id)}`);
      } catch (error) {
        if (error.status === 404 || error.status === 403) removeRow(id);
        return;
      }
      if (!who || generation !== listGeneration) return; // a newer list covers it
      if (filters.team && !dagTeams.has(ti.dag_id)) await loadDags().catch(() => {});
      if (matchesFilters(ti)) upsertRow(ti, seq);
      else removeRow(id);
    }));
    if (who && !listLoading) updateListStatus();
  }

  // ---- One task instance -------------------------------------------------------------

  async function showTiView(id) {
    showView("ti-view");
    current = { id, ti: null, history: new Map(), seq: 0 };
    const view = current;
    $("ti-title").textContent = "Task instance";
    document.title = "Task instance · taskgate";
    clearError($("ti-error"));
    show($("ti-body"), false);
    $("revoke-status").textContent = "";
    for (const id of ["ti-refusals-reasons", "ti-refusals-rows", "ti-xcoms"]) $(id).replaceChildren();
    for (const id of ["ti-refusals-wrap", "ti-refusals-empty", "ti-xcoms-empty"]) show($(id), false);
    clearError($("ti-refusals-error"));
    clearError($("ti-xcoms-error"));
    try {
      const seq = ++readSeq;
      const ti = await api("GET", `/task-instances/${encodeURIComponent(id)}`);
      if (current !== view) return;
      view.seq = seq;
      view.ti = ti;
      renderTi();
      show($("ti-body"), true);
      $("ti-title").focus();
      loadTiExtras(view);
      await loadHistory(view);
    } catch (error) {
      if (current !== view) return;
      showError($("ti-error"), error);
    }
  }

  /** The TI's state changes and revocations kept in the event feed, oldest first. */
  async function loadHistory(view) {
    let after = null;
    for (let page = 0; page < HISTORY_MAX_PAGES; page += 1) {
      const query = new URLSearchParams({
        follow: "false", dag_id: view.ti.dag_id, limit: String(HISTORY_PAGE),
      });
      if (after !== null) query.set("after", String(after));
      const events = await api("GET", `/events?${query}`);
      if (current !== view) return;
      for (const event of events) {
        if (event.data && event.data.ti_id === view.id && event.event !== "operator.action") {
          view.history.set(event.id, event);
        }
      }
      if (events.length) after = events[events.length - 1].id;
      if (events.length < HISTORY_PAGE) break;
    }
    renderHistory();
  }

  /** An event of the task instance on view: add it to its history, read it again. */
  function onCurrentTiEvent(event) {
    const view = current;
    view.history.set(event.id, event);
    if (view.ti) renderHistory();
    if (detailTimer === null) {
      detailTimer = window.setTimeout(() => {
        detailTimer = null;
        refreshCurrent(view);
      }, BATCH_MS);
    }
  }

  /** Read the task instance on view again and show it. */
  async function refreshCurrent(view) {
    if (current !== view || !view.ti) return;
    const seq = ++readSeq;
    try {
      const ti = await api("GET", `/task-instances/${encodeURIComponent(view.id)}`);
      if (current === view && seq > (view.seq || 0)) {
        view.seq = seq;
        view.ti = ti;
        renderTi();
      }
    } catch (error) {
      if (current === view) showError($("ti-error"), error);
    }
  }

  function addField(list, name, value, wide = false) {
    const row = el("div", wide ? "field-row wide" : "field-row");
    const dt = el("dt", null, name);
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value === null || value === undefined || value === "" ? "—" : String(value);
    row.append(dt, dd);
    list.append(row);
    return dd;
  }

  function timeOrDash(value) {
    const date = parseTime(value);
    return date ? timeElement(date) : "—";
  }

  function renderTi(now = Date.now()) {
    const ti = current.ti;
    $("ti-title").textContent = `${tiLabel(ti)} · ${ti.dag_id} / ${ti.run_id}`;
    $("ti-title").tabIndex = -1;
    document.title = `${tiLabel(ti)} · taskgate`;

    const fields = $("ti-fields");
    fields.replaceChildren();
    addField(fields, "ID", el("code", null, ti.id), true);
    addField(fields, "DAG", ti.dag_id);
    addField(fields, "Run", ti.run_id);
    addField(fields, "Task", ti.task_id);
    addField(fields, "Map index", mapIndexText(ti));
    addField(fields, "State", stateElement(ti.state));
    addField(fields, "Try", `${ti.try_number} (max tries ${ti.max_tries})`);
    addField(fields, "Hostname", ti.hostname);
    addField(fields, "Unix user", ti.unixname);
    addField(fields, "PID", ti.pid);
    addField(fields, "Queued at", timeOrDash(ti.queued_at));
    addField(fields, "Started", timeOrDash(ti.start_date));
    addField(fields, "Ended", timeOrDash(ti.end_date));
    current.durationCell = addField(fields, "Duration", durationText(ti, now));
    current.heartbeatCell = addField(fields, "Last heartbeat", "");
    fields.classList.toggle("stale", fillHeartbeat(current.heartbeatCell, ti, now));

    renderTokens();
    renderRevokeControl();

    const rendered = ti.rendered_fields;
    const empty = rendered === null || rendered === undefined
      || (typeof rendered === "object" && Object.keys(rendered).length === 0);
    $("ti-rendered").textContent = empty ? "(none)" : JSON.stringify(rendered, null, 2);
  }

  function renderTokens() {
    const ti = current.ti;
    const list = $("ti-tokens");
    list.replaceChildren();
    const mark = ti.tokens_not_before;
    const watermark = mark === null || mark === undefined
      ? el("span", "never-revoked", "never revoked")
      : timeElement(new Date(mark * 1000), undefined, true);
    if (watermark.tagName === "TIME") watermark.id = "watermark";
    const dd = addField(list, "Revocation watermark", watermark, true);
    if (mark !== null && mark !== undefined) {
      // Queueing the TI moves it too: the tokens of an earlier try count no more.
      dd.append(el("span", "hint",
        " (tokens issued before it are refused; set by revoking and by queueing)"));
    }
    addField(list, "Workload tokens spent", ti.workload_tokens_spent);
    current.expiryCell = addField(list, "Newest token expires", "");
    fillExpiry(current.expiryCell, ti.token_expires_at, Date.now());
  }

  /** When the newest execution token expires: the time and how far off, in words. */
  function fillExpiry(cell, expires, now) {
    cell.replaceChildren();
    if (expires === null || expires === undefined) {
      cell.append(el("span", "no-token", "no token issued"));
      return;
    }
    const date = new Date(expires * 1000);
    const left = date.getTime() - now;
    const words = left >= 0 ? `in ${roughSpan(left)}` : `expired ${roughSpan(-left)} ago`;
    const node = timeElement(date);
    node.id = "token-expiry";
    cell.append(node, el("span", "hint", ` (${words})`));
  }

  /** A span, roughly: "40 s", "9 min", "2 h 5 min". */
  function roughSpan(ms) {
    const s = Math.round(ms / 1000);
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    return `${Math.floor(m / 60)} h ${m % 60} min`;
  }

  // ---- A task instance's refusals and XCom keys --------------------------------------

  async function loadTiExtras(view) {
    if (view.extrasLoading) return;
    view.extrasLoading = true;
    const ti = view.ti;
    const refusalsQuery = new URLSearchParams({
      minutes: "60", ti_id: view.id, latest: String(TI_REFUSALS_LATEST),
    });
    const xcomsQuery = new URLSearchParams({
      dag_id: ti.dag_id, run_id: ti.run_id, task_id: ti.task_id,
    });
    try {
      await Promise.all([
        api("GET", `/refusals?${refusalsQuery}`).then((summary) => {
          if (current !== view) return;
          clearError($("ti-refusals-error"));
          renderTiRefusals(summary);
        }, (error) => {
          if (current === view) showError($("ti-refusals-error"), error);
        }),
        api("GET", `/xcoms?${xcomsQuery}`).then((xcoms) => {
          if (current !== view) return;
          clearError($("ti-xcoms-error"));
          renderTiXcoms(xcoms.filter((x) => x.map_index === view.ti.map_index));
        }, (error) => {
          if (current === view) showError($("ti-xcoms-error"), error);
        }),
      ]);
    } finally {
      view.extrasLoading = false;
    }
  }

  function renderTiRefusals(summary) {
    $("ti-refusals-reasons").replaceChildren(...summary.by_reason.map((item) => {
      const li = el("li");
      li.dataset.reason = item.reason;
      li.append(el("span", "count-label", item.reason), ": ", el("strong", "count", item.count));
      return li;
    }));
    $("ti-refusals-rows").replaceChildren(...summary.latest.map((item) => {
      const tr = refusalRow(item);
      return tr;
    }));
    show($("ti-refusals-wrap"), summary.latest.length > 0);
    show($("ti-refusals-empty"), summary.total === 0);
  }

  function renderTiXcoms(xcoms) {
    $("ti-xcoms").replaceChildren(...xcoms.map((xcom) => {
      const li = el("li");
      li.append(el("code", "xcom-key", xcom.key));
      if (xcom.map_index !== -1) li.append(el("span", "hint", ` (map index ${xcom.map_index})`));
      return li;
    }));
    show($("ti-xcoms-empty"), xcoms.length === 0);
  }

  /** A row of refusals' "latest": time, reason, status, request (and the TI if asked). */
  function refusalRow(item, withTi = false) {
    const tr = el("tr");
    const when = el("td", "col-time");
    const at = parseTime(item.at);
    when.append(at ? timeElement(at) : "—");
    tr.append(when, el("td", "col-reason", item.reason), el("td", "col-status", item.status),
      el("td", "col-request", `${item.method} ${item.route}`));
    if (withTi) {
      const cell = el("td", "col-ti");
      if (item.ti_id) {
        const link = el("a", "ti-link", item.dag_id && item.task_id
          ? `${item.dag_id} / ${item.task_id}` : item.ti_id);
        link.href = `#/ti/${encodeURIComponent(item.ti_id)}`;
        cell.append(link);
      } else {
        cell.append(el("span", "hint", "no token read"));
      }
      tr.append(cell);
    }
    return tr;
  }

  // ---- Refusals ----------------------------------------------------------------------

  function showRefusalsView() {
    showView("refusals-view");
    document.title = "Refusals · taskgate";
    loadRefusals();
  }

  /** A refreshing view's data from ``path``, or null: on an error (shown in the element
   * ``errorId``), or when the view was left or the session ended meanwhile. */
  async function readPanel(path, errorId) {
    const generation = panelGeneration;
    let data;
    try {
      data = await api("GET", path);
    } catch (error) {
      if (generation === panelGeneration && who) showError($(errorId), error);
      return null;
    }
    if (generation !== panelGeneration || !who) return null;
    clearError($(errorId));
    return data;
  }

  async function loadRefusals() {
    const summary = await readPanel("/refusals?minutes=60&latest=50", "refusals-error");
    if (!summary) return;
    const since = parseTime(summary.since);
    $("refusals-status").textContent = `Since ${since ? formatTime(since) : summary.since}; `
      + `read ${formatTime(new Date())}.`;
    $("refusals-total").textContent = String(summary.total);
    fillBars($("by-reason"), summary.by_reason.map((item) => [item.reason, item.count]));
    fillBars($("by-route"), summary.by_route.map(
      (item) => [`${item.method} ${item.route}`, item.count]));
    $("refusals-rows").replaceChildren(...summary.latest.map((item) => refusalRow(item, true)));
    show($("refusals-body"), summary.total > 0);
    show($("refusals-empty"), summary.total === 0);
  }

  /** A bar chart of DOM elements: each label and count written out, the bar's width the
   * count's share of the largest. */
  function fillBars(list, items) {
    const most = Math.max(1, ...items.map(([, count]) => count));
    list.replaceChildren(...items.map(([label, count]) => {
      const li = el("li", "bar-row");
      li.dataset.label = label;
      const track = el("span", "bar-track");
      track.setAttribute("aria-hidden", "true");
      const fill = el("span", "bar-fill");
      fill.style.width = `${(100 * count) / most}%`;
      track.append(fill);
      li.append(el("span", "bar-label", label), track, el("span", "bar-count", count));
      return li;
    }));
  }

  // ---- Health ------------------------------------------------------------------------

  function showHealthView() {
    showView("health-view");
    document.title = "Health · taskgate";
    loadHealth();
  }

  async function loadHealth() {
    const health = await readPanel("/health", "health-error");
    if (!health) return;
    const fields = $("health-fields");
    fields.replaceChildren();
    const database = el("span", health.database === "ok" ? "health-ok" : "health-fault",
      health.database);
    database.id = "health-database";
    addField(fields, "Database", database);
    const signing = health.signing_key;
    const key = signing ? el("span") : el("span", "hint", "none (this replica only validates)");
    if (signing) {
      const kid = el("code", null, signing.kid);
      kid.id = "signing-kid";
      key.append(kid, ` (${signing.algorithm})`);
    }
    addField(fields, "Signing key", key);
    addField(fields, "Replica answering", el("code", null, health.this_replica));

    const accepted = health.accepted_keys || [];
    $("accepted-keys").replaceChildren(...accepted.map((item) => {
      const li = el("li");
      li.append(el("code", null, item.kid), ` (${item.algorithm})`);
      if (signing && item.kid === signing.kid) li.append(el("span", "hint", " – signing"));
      return li;
    }));
    $("keys-note").textContent = accepted.length > 1
      ? `${accepted.length} keys are accepted: a key rotation is in progress. Tokens signed `
        + "with an older key stay valid until they expire."
      : "One key is accepted: no key rotation is in progress.";

    const replicas = health.replicas || [];
    $("replica-rows").replaceChildren(...replicas.map((replica) => {
      const tr = el("tr");
      tr.dataset.replicaId = replica.replica_id;
      const host = el("td", "col-host", replica.hostname);
      if (replica.replica_id === health.this_replica) {
        tr.classList.add("this-replica");
        host.append(" ", el("span", "badge badge-this", "this replica"));
      }
      const started = parseTime(replica.started_at);
      const seen = parseTime(replica.last_seen_at);
      const startedCell = el("td");
      startedCell.append(started ? timeElement(started) : "—");
      const seenCell = el("td");
      seenCell.append(seen ? timeElement(seen, `${formatSpan(Date.now() - seen)} ago`) : "—");
      tr.append(host, el("td", null, replica.pid), el("td", null, replica.version),
        startedCell, seenCell);
      return tr;
    }));
    show($("replicas-empty"), replicas.length === 0);
    show($("health-body"), true);
  }

  /** For operators and admins only: a reader's page has no revoke control at all. */
  function renderRevokeControl() {
    const area = $("revoke-area");
    if (!who || !REVOKING_ROLES.has(who.role)) {
      area.replaceChildren();
      return;
    }
    if (area.querySelector("#revoke-open")) return;
    const button = el("button", "danger", "Revoke tokens…");
    button.type = "button";
    button.id = "revoke-open";
    button.addEventListener("click", openRevokeDialog);
    area.replaceChildren(button);
  }

  function ensureRevokeDialog() {
    if (revokeDialog) return revokeDialog;
    const dialog = el("dialog", "confirm");
    dialog.id = "revoke-dialog";
    dialog.setAttribute("aria-labelledby", "revoke-dialog-title");
    dialog.setAttribute("aria-describedby", "revoke-dialog-text");
    const title = el("h2", null, "Revoke tokens?");
    title.id = "revoke-dialog-title";
    const text = el("p");
    text.id = "revoke-dialog-text";
    const actions = el("div", "actions");
    const cancel = el("button", null, "Cancel");
    cancel.type = "button";
    cancel.id = "revoke-cancel";
    cancel.addEventListener("click", () => dialog.close("cancel"));
    const confirm = el("button", "danger", "Revoke tokens");
    confirm.type = "button";
    confirm.id = "revoke-confirm";
    confirm.addEventListener("click", () => {
      dialog.close("confirm");
      revoke();
    });
    actions.append(cancel, confirm);
    dialog.append(title, text, actions);
    document.body.append(dialog);
    revokeDialog = dialog;
    return dialog;
  }

  function openRevokeDialog() {
    if (!current || !current.ti) return;
    const dialog = ensureRevokeDialog();
    dialog.querySelector("#revoke-dialog-text").textContent =
      `Every token issued so far for ${tiLabel(current.ti)} (${current.ti.dag_id} / `
      + `${current.ti.run_id}) will be refused from its next request on: its worker `
      + "can no longer heartbeat or report. Queue it again to run it anew.";
    dialog.showModal();
    dialog.querySelector("#revoke-cancel").focus();
  }

  async function revoke() {
    const view = current;
    if (!view || !view.ti) return;
    const button = $("revoke-open");
    if (button) button.disabled = true;
    $("revoke-status").textContent = "Revoking…";
    clearError($("ti-error"));
    try {
      const answer = await api("POST", `/task-instances/${encodeURIComponent(view.id)}/revoke-tokens`);
      if (current !== view) return;
      view.ti.tokens_not_before = answer.tokens_not_before;
      renderTokens();
      const mark = formatTime(new Date(answer.tokens_not_before * 1000), true);
      $("revoke-status").textContent = `Tokens revoked: every token issued before ${mark} is refused.`;
    } catch (error) {
      if (current !== view) return;
      $("revoke-status").textContent = "";
      showError($("ti-error"), error);
    } finally {
      const again = $("revoke-open");
      if (again) again.disabled = false;
      if (again && current === view) again.focus();
    }
  }

  function renderHistory() {
    const body = $("history-rows");
    const events = [...current.history.values()].sort((a, b) => a.id - b.id);
    body.replaceChildren(...events.map((event) => {
      const data = event.data || {};
      const tr = el("tr");
      tr.dataset.eventId = event.id;
      const change = el("td");
      if (event.event === "ti.revoked") {
        change.append(el("span", "revoked-mark", "tokens revoked"));
      } else {
        change.append(stateElement(data.from || "created"), " → ", stateElement(data.to));
      }
      const at = parseTime(data.at);
      const when = el("td");
      when.append(at ? timeElement(at) : "—");
      tr.append(change, el("td", null, data.try_number ?? "—"), when, el("td", null, data.actor || "—"));
      return tr;
    }));
    show($("history-empty"), events.length === 0);
  }

  // ---- Relative times, every second --------------------------------------------------

  /** Heartbeats change no state and make no event: read the running task instances
   * shown again (one request for the list, with its filters), so that a healthy one is
   * not marked stale, and one whose end the stream did not bring is read again. */
  async function pollRunning() {
    if (polling || !who) return;
    polling = true;
    try {
      const shown = [...rows.values()].filter((entry) => entry.ti.state === "running");
      if (listLoaded && !listLoading && shown.length) {
        const query = new URLSearchParams({ state: "running", limit: "1000" });
        for (const name of ["dag_id", "run_id", "team"]) if (filters[name]) query.set(name, filters[name]);
        const generation = listGeneration;
        const seq = ++readSeq;
        const tis = await api("GET", `/task-instances?${query}`);
        if (who && generation === listGeneration) {
          const running = new Set();
          for (const ti of tis) {
            running.add(ti.id);
            if (rows.has(ti.id) && matchesFilters(ti)) upsertRow(ti, seq);
          }
          for (const entry of shown) {
            if (!running.has(entry.ti.id) && entry.seq < seq) pending.add(entry.ti.id);
          }
          if (pending.size) schedulePending();
        }
      }
      if (current && current.ti && current.ti.state === "running") await refreshCurrent(current);
    } catch (error) {
      // The next poll tries again; a 401 has signed the page out already (api).
    } finally {
      polling = false;
    }
  }

  function tick() {
    if (!who) return;
    const now = Date.now();
    if (now - lastPoll >= HEARTBEAT_POLL_MS) {
      lastPoll = now;
      pollRunning();
    }
    for (const entry of rows.values()) renderRowTimes(entry, now);
    if (current && current.ti && current.durationCell) {
      current.durationCell.textContent = durationText(current.ti, now);
      $("ti-fields").classList.toggle("stale", fillHeartbeat(current.heartbeatCell, current.ti, now));
      if (current.expiryCell) fillExpiry(current.expiryCell, current.ti.token_expires_at, now);
    }
  }

  // ---- Start -------------------------------------------------------------------------

  async function start() {
    fillSelect($("filter-state"), STATES, "");
    $("sign-in-form").addEventListener("submit", signIn);
    $("sign-out").addEventListener("click", signOut);
    $("filters").addEventListener("change", onFiltersChanged);
    $("filters").addEventListener("submit", (event) => {
      event.preventDefault(); // Enter in a text field applies the filters
      onFiltersChanged();
    });
    $("filters").addEventListener("reset", () => window.setTimeout(onFiltersChanged, 0));
    window.addEventListener("hashchange", route);
    window.setInterval(tick, TICK_MS);
    // Signed in already (a session cookie from before)? The answer decides the view.
    let session = null;
    try {
      session = await api("GET", "/sessions/current");
    } catch (error) {
      if (error.status !== 401) {
        showSignIn(error);
        return;
      }
    }
    if (session) await startApp(session);
    else showSignIn();
  }

  start();
})();
