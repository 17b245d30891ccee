// Rampart console: the live views. Pages work without this file; it only keeps a running
// experiment or game day current without reloading, over server-sent events.
"use strict";
(function () {
  const live = document.querySelector("[data-live]");
  if (!live || !window.EventSource) return;
  const status = document.querySelector(".live-status");
  const say = (text) => { if (status) status.textContent = text; };
  const source = new EventSource(live.getAttribute("data-live"));
  source.addEventListener("open", () => say("live: connected"));
  source.addEventListener("panel", (e) => {
    // Markup rendered and escaped by the coordinator.
    live.innerHTML = e.data;
    say("live: updated " + new Date().toLocaleTimeString());
  });
  source.addEventListener("done", () => { source.close(); say("live: the run has finished"); });
  source.addEventListener("error", () => say("live: reconnecting…"));
})();
