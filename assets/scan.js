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
  const configured = panel.dataset.configured !== "false";
  // Times in the school's zone, as the server writes them: 18:01:35.
  const clock = new Intl.DateTimeFormat(document.documentElement.lang, {
    timeZone: panel.dataset.zone || undefined,
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
  });
  // The server renders the progress as a number only: the page's policy
  // allows no inline style.
  $("scan-progress-bar").style.width = ($("scan-progress").getAttribute("aria-valuenow") || "0") + "%";

  const format = (template, values) =>
    template.replace(/\{(\w+)\}/g, (_, key) => (key in values ? String(values[key]) : ""));

  // The start button stays focusable while a scan runs (a disabled one
  // would drop the focus); it only says it does nothing now.
  function setState(state) {
    panel.dataset.scanState = state;
    $("scan-cancel").hidden = state !== "running";
    $("scan-resume").hidden = !configured || !["interrupted", "error", "cancelled"].includes(state);
    const start = $("scan-start");
    if (!start) return;
    if (state === "running") start.setAttribute("aria-disabled", "true");
    else start.removeAttribute("aria-disabled");
  }

  // "noch ca. 40 s", "noch ca. 3 min", as the server renders it.
  function eta(secs) {
    if (secs === null || secs === undefined) return "";
    const about = secs < 90 ? Math.max(1, secs) + " s" : Math.round(secs / 60) + " min";
    return format(text.eta, { about });
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
    const shown = bar.getAttribute("aria-valuenow");
    bar.setAttribute("aria-valuetext", shown + " % · " + (s.current_step || ""));
    $("scan-step").textContent = s.current_step || "";
    const running = s.status === "running";
    $("scan-count").textContent = running && s.events_total !== null && s.events_total !== undefined
      ? "Events " + s.events_scanned + " / " + s.events_total : "";
    $("scan-eta").textContent = running ? eta(s.eta_s) : "";
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
    const box = $("scan-log-box");
    box.hidden = false;
    const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 24;
    const item = document.createElement("li");
    item.dataset.id = line.id;
    const time = document.createElement("time");
    time.dateTime = line.created_at;
    time.textContent = clock.format(new Date(line.created_at));
    item.append(time, " " + line.message);
    log.append(item);
    while (log.children.length > MAX_LOG_LINES) log.firstElementChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
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
    const when = status.completed_at ? new Date(status.completed_at) : new Date();
    const hhmm = clock.format(when).slice(0, 5);
    say(format(text.last, { when: text.today + " " + hhmm, summary: status.summary || "" }));
    refreshFromServer();
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
    $("scan-log-box").hidden = true;
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
    const button = $("scan-start");
    if (button.getAttribute("aria-disabled") === "true") return;
    button.setAttribute("aria-disabled", "true");
    try {
      const mode = $("scan-full").checked ? "full" : "incremental";
      const { status, body } = await post("/api/scans", { mode });
      if (status === 202 || status === 409) {
        reset();
        say(status === 202 ? text.started : text.attached);
        follow(body.scan_id);
      } else {
        say(format(text.failed_request, { message: body.error || body.message || status }));
        button.removeAttribute("aria-disabled");
      }
    } catch (error) {
      say(format(text.failed_request, { message: error.message }));
      button.removeAttribute("aria-disabled");
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

  // After a scan: the customer list and the last scan's line as the
  // server renders them now, swapped in place (no second renderer here).
  async function refreshFromServer() {
    try {
      const response = await fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
      const list = document.querySelector("section.customers");
      const freshList = fresh.querySelector("section.customers");
      if (list && freshList) list.replaceChildren(...Array.from(freshList.childNodes, (n) => document.importNode(n, true)));
      const freshStatus = fresh.getElementById("scan-status");
      if (freshStatus && panel.dataset.scanState !== "running") say(freshStatus.textContent.trim());
    } catch (_) {
      // The page stays as it was; a reload shows the new state.
    }
  }

  if ($("scan-start")) $("scan-start").addEventListener("click", start);
  $("scan-cancel").addEventListener("click", () => act("cancel"));
  $("scan-resume").addEventListener("click", () => act("resume"));

  if (panel.dataset.scanState === "running" && scanId) follow(scanId);
})();
