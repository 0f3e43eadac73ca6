// The scan panel: starts or attaches to a scan, follows it over Server-Sent
// Events, and falls back to polling the status API every 2 s when the stream
// is unavailable. Everything from the server is inserted as text.
(() => {
  "use strict";

  const panel = document.getElementById("scan-panel");
  if (!panel) return;
  const $ = (id) => document.getElementById(id);
  const text = JSON.parse($("scan-i18n").textContent);
  const MAX_LOG_LINES = 500;
  const POLL_MS = 2000;
  const FIRST_EVENT_MS = 4000;

  let scanId = panel.dataset.scanId || null;
  let lastLogId = Number(panel.dataset.lastLogId || 0);
  let startedAt = panel.dataset.startedAt ? Date.parse(panel.dataset.startedAt) : null;
  let source = null;
  let pollTimer = null;
  let tickTimer = null;
  let watchdog = null;
  let streamErrors = 0;
  // The server renders the progress as a number only: the page's policy
  // allows no inline style.
  $("scan-progress-bar").style.width = ($("scan-progress").getAttribute("aria-valuenow") || "0") + "%";

  const format = (template, values) =>
    template.replace(/\{(\w+)\}/g, (_, key) => (key in values ? String(values[key]) : ""));

  function setState(state) {
    panel.dataset.scanState = state;
    $("scan-cancel").hidden = state !== "running";
    $("scan-resume").hidden = !["interrupted", "error", "cancelled"].includes(state);
    $("scan-start").disabled = state === "running";
  }

  function say(message) {
    $("scan-status").textContent = message;
  }

  function showFigures(s) {
    const progress = Math.max(0, Math.min(100, Number(s.progress) || 0));
    const bar = $("scan-progress");
    if (progress >= Number(bar.getAttribute("aria-valuenow") || 0) || s.status !== "running") {
      bar.setAttribute("aria-valuenow", String(progress));
      $("scan-progress-bar").style.width = progress + "%";
      $("scan-percent").textContent = progress + " %";
    }
    $("scan-step").textContent = s.current_step || "";
    $("stat-events").textContent = s.events_scanned;
    $("stat-emails").textContent = s.emails_found;
    $("stat-new").textContent = s.new_count;
    $("stat-existing").textContent = s.existing_count;
    if (s.started_at) startedAt = Date.parse(s.started_at);
    if (s.status !== "running") $("stat-duration").textContent = Number(s.duration).toFixed(1) + " " + text.seconds;
  }

  function addLog(line) {
    if (line.id <= lastLogId) return;
    lastLogId = line.id;
    const log = $("scan-log");
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 24;
    const item = document.createElement("li");
    item.dataset.id = line.id;
    const time = document.createElement("time");
    time.dateTime = line.created_at;
    time.textContent = new Date(line.created_at).toLocaleTimeString(document.documentElement.lang);
    item.append(time, " " + line.message);
    log.append(item);
    while (log.children.length > MAX_LOG_LINES) log.firstElementChild.remove();
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function tick() {
    clearInterval(tickTimer);
    tickTimer = setInterval(() => {
      if (startedAt) {
        $("stat-duration").textContent = ((Date.now() - startedAt) / 1000).toFixed(1) + " " + text.seconds;
      }
    }, 1000);
  }

  function stopFollowing() {
    if (source) source.close();
    source = null;
    clearTimeout(watchdog);
    clearTimeout(pollTimer);
    clearInterval(tickTimer);
    pollTimer = null;
  }

  function apply(status) {
    showFigures(status);
    (status.logs || []).forEach(addLog);
    if (status.status !== "running") finish(status);
  }

  function finish(status) {
    stopFollowing();
    showFigures(status);
    setState(status.status);
    const messages = {
      completed: format(text.completed, {
        events: status.events_scanned,
        emails: status.emails_found,
        new: status.new_count,
        existing: status.existing_count,
      }),
      error: format(text.error, { message: status.error_message || "" }),
      cancelled: text.cancelled,
      interrupted: text.interrupted,
    };
    say(messages[status.status] || "");
    refreshCustomers();
  }

  // The stream first; polling when no event comes in time or it keeps failing.
  function follow(id) {
    stopFollowing();
    scanId = id;
    streamErrors = 0;
    setState("running");
    tick();
    if (!window.EventSource) return poll();
    source = new EventSource("/api/scans/" + encodeURIComponent(id) + "/events");
    watchdog = setTimeout(poll, FIRST_EVENT_MS);
    const onEvent = (handler) => (event) => {
      clearTimeout(watchdog);
      streamErrors = 0;
      handler(JSON.parse(event.data));
    };
    source.addEventListener("snapshot", onEvent(apply));
    source.addEventListener("progress", onEvent(showFigures));
    source.addEventListener("log", onEvent(addLog));
    source.addEventListener("done", onEvent(finish));
    source.onerror = () => {
      streamErrors += 1;
      if (source && (source.readyState === EventSource.CLOSED || streamErrors >= 3)) poll();
    };
  }

  function poll() {
    if (source) source.close();
    source = null;
    clearTimeout(watchdog);
    const note = $("scan-transport-note");
    note.textContent = text.polling;
    note.hidden = false;
    const once = async () => {
      try {
        const response = await fetch(
          "/api/scans/" + encodeURIComponent(scanId) + "?after=" + lastLogId,
          { credentials: "same-origin", headers: { Accept: "application/json" } },
        );
        if (response.status === 401) return loginAgain();
        if (response.ok) {
          const status = await response.json();
          apply(status);
          if (status.status !== "running") return;
        }
      } catch (_) {
        // A network hiccup: try again at the next tick.
      }
      pollTimer = setTimeout(once, POLL_MS);
    };
    once();
  }

  // A session that ended while the page was open: to the login, which
  // says so and comes back here.
  function loginAgain() {
    const here = location.pathname + location.search;
    location.assign("/login?" + new URLSearchParams({ next: here, expired: "1" }));
  }

  async function post(url, json) {
    const headers = { Accept: "application/json" };
    if (json !== undefined) headers["Content-Type"] = "application/json";
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
    });
    if (response.status === 401) loginAgain();
    let body = {};
    try {
      body = await response.json();
    } catch (_) {
      // Not JSON: the status says enough.
    }
    return { status: response.status, body };
  }

  function reset() {
    $("scan-log").replaceChildren();
    $("scan-transport-note").hidden = true;
    lastLogId = 0;
    startedAt = Date.now();
    showFigures({ progress: 0, current_step: "", events_scanned: 0, emails_found: 0,
      new_count: 0, existing_count: 0, status: "running" });
    $("scan-progress").setAttribute("aria-valuenow", "0");
    $("scan-progress-bar").style.width = "0%";
    $("scan-percent").textContent = "0 %";
  }

  async function start() {
    $("scan-start").disabled = true;
    try {
      const mode = $("scan-full").checked ? "full" : "incremental";
      const { status, body } = await post("/api/scans", { mode });
      if (status === 202 || status === 409) {
        reset();
        say(status === 202 ? text.started : text.attached);
        follow(body.scan_id);
      } else {
        say(format(text.failed_request, { message: body.error || body.message || status }));
        $("scan-start").disabled = false;
      }
    } catch (error) {
      say(format(text.failed_request, { message: error.message }));
      $("scan-start").disabled = false;
    }
  }

  async function act(action) {
    if (!scanId) return;
    try {
      const { status, body } = await post("/api/scans/" + encodeURIComponent(scanId) + "/" + action);
      if (action === "resume" && status === 202) {
        say(body.message || "");
        follow(scanId);
      } else if (status >= 400) {
        say(format(text.failed_request, { message: body.error || body.message || status }));
      }
    } catch (error) {
      say(format(text.failed_request, { message: error.message }));
    }
  }

  // The customer list and total, refreshed in place after a scan.
  async function refreshCustomers() {
    const rows = $("customer-rows");
    if (!rows) return;
    const params = new URLSearchParams({ q: rows.dataset.q || "", page: rows.dataset.page || "1" });
    try {
      const response = await fetch("/api/customers?" + params, { credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      $("customer-total").textContent = data.total;
      rows.replaceChildren(...data.customers.map((c) => {
        const tr = document.createElement("tr");
        const cells = [c.email, c.name || "", c.bookings, (c.last_booking_at || "").slice(0, 10)];
        cells.forEach((value, i) => {
          const td = document.createElement("td");
          td.textContent = value;
          if (i === 2) td.className = "num";
          tr.append(td);
        });
        return tr;
      }));
    } catch (_) {
      // The list stays as it was; the next scan refreshes it again.
    }
  }

  $("scan-start").addEventListener("click", start);
  $("scan-cancel").addEventListener("click", () => act("cancel"));
  $("scan-resume").addEventListener("click", () => act("resume"));

  if (panel.dataset.scanState === "running" && scanId) follow(scanId);
})();
