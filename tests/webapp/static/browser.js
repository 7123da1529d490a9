"use strict";
// Runs in headless Chromium (tests/webapp/test_browser.py): opens a WebSocket and an
// EventSource on this page's origin and fetches a cached route from another origin
// (?other=ORIGIN), writing each outcome into the DOM. Every check ends within 8 s.
const params = new URLSearchParams(location.search);
const OTHER = params.get("other") || "";
const SYMBOL = params.get("symbol") || "BTCUSDT";
const LIMIT_MS = 8000;

function report(id, ok, detail) {
  const el = document.getElementById(id);
  if (el.dataset.result !== "pending") return;  // first outcome wins
  el.dataset.result = ok ? "ok" : "fail";
  el.textContent = (ok ? "ok: " : "fail: ") + detail;
}

function check(id, run) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => { report(id, false, "timeout after " + LIMIT_MS + " ms"); resolve(); }, LIMIT_MS);
    const done = (ok, detail) => { clearTimeout(timer); report(id, ok, detail); resolve(); };
    try { run(done); } catch (e) { done(false, "exception " + e); }
  });
}

function wsCheck(done) {
  const token = "hello-" + Math.random().toString(36).slice(2);
  const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/echo");
  ws.onopen = () => ws.send(token);
  ws.onmessage = (e) => {
    if (e.data === token) { done(true, "echoed " + token); ws.close(1000); }
    else done(false, "unexpected message " + String(e.data).slice(0, 80));
  };
  ws.onclose = (e) => done(false, "closed before the echo, code " + e.code);
}

function sseCheck(done) {
  const es = new EventSource("/events");
  const seen = [];
  es.addEventListener("tick", (e) => {
    seen.push(JSON.parse(e.data).seq);
    if (seen.length === 3) { es.close(); done(true, "3 events, seq " + seen.join(",")); }
  });
  es.onerror = () => { es.close(); done(false, "error, readyState " + es.readyState + " after " + seen.length + " events"); };
}

function corsCheck(done) {
  if (!OTHER) return done(false, "no ?other= origin given");
  fetch(OTHER + "/api/trading/ticker?symbol=" + encodeURIComponent(SYMBOL), { mode: "cors" })
    .then((r) => r.json().then((j) => ({ r, j })))
    .then(({ r, j }) => done(r.ok && j.symbol === SYMBOL, "status " + r.status + ", symbol " + j.symbol))
    .catch((e) => done(false, "fetch failed: " + e));
}

function staticCheck(done) {
  const s = getComputedStyle(document.body).backgroundColor;
  done(s === "rgb(11, 14, 17)", "body background " + s);
}

Promise.all([check("ws", wsCheck), check("sse", sseCheck), check("cors", corsCheck), check("static", staticCheck)])
  .then(() => { const d = document.getElementById("done"); d.dataset.done = "yes"; d.textContent = "done"; });
