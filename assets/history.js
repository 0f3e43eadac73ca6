// The scan history: a running scan's row follows it over its event stream
// (progress, step, "Events x / y"); when it ends, the page is read again so
// the row shows the server's badge and summary. Everything is text.
(() => {
  "use strict";

  const row = document.querySelector('table.scans tr[data-status="running"]');
  if (!row || !window.EventSource) return;
  const cell = row.querySelector("td.result");
  const source = new EventSource("/api/scans/" + encodeURIComponent(row.dataset.scanId) + "/events");
  const show = (event) => {
    const s = JSON.parse(event.data);
    let text = s.progress + " % · " + (s.current_step || "");
    if (s.events_total !== null && s.events_total !== undefined) {
      text += " · Events " + s.events_scanned + " / " + s.events_total;
    }
    cell.textContent = text;
  };
  source.addEventListener("snapshot", show);
  source.addEventListener("progress", show);
  source.addEventListener("done", () => {
    source.close();
    location.reload();
  });
})();
