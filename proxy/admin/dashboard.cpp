/// GET /dashboard: one self-contained page (inline CSS and JS, no CDN, no
/// build step) that polls /stats once a second and draws live charts on
/// <canvas>. The top row answers "is the cache doing its job?" at a glance:
/// hit ratio, requests/s, p99, errors, upstream health.
///
/// For tests and people alike, each chart's <canvas> carries data-points (the
/// number of points drawn) and <body> carries data-polls (successful polls).
/// When the admin listener needs a token, open /dashboard#token=TOKEN: the
/// fragment never leaves the browser; the page sends it as a Bearer header.

#include "admin/admin_handler.hpp"

namespace cacheproxy::admin {

namespace {

constexpr std::string_view kDashboard = R"HTML(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>cacheproxy dashboard</title>
<style>
  :root { --bg:#0f1419; --panel:#171d24; --line:#27313c; --text:#d8dee6; --dim:#8a96a3;
          --good:#3fb950; --warn:#d29922; --bad:#f85149; --accent:#58a6ff; }
  * { box-sizing: border-box; }
  body { margin:0; background:var(--bg); color:var(--text);
         font:14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
  header { display:flex; align-items:baseline; gap:16px; padding:12px 20px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; }
  header .meta { color:var(--dim); font-size:12px; }
  #status { margin-left:auto; font-size:12px; color:var(--dim); }
  #banner { display:none; margin:12px 20px; padding:10px 14px; border-radius:6px; background:#3d1d1d; color:#ffb4ab; }
  .tiles { display:grid; grid-template-columns:repeat(6, 1fr); gap:12px; padding:16px 20px 4px; }
  .tile { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
  .tile .label { color:var(--dim); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
  .tile .value { font-size:28px; font-weight:600; margin-top:2px; }
  .tile .sub { color:var(--dim); font-size:12px; }
  .good { color:var(--good); } .warn { color:var(--warn); } .bad { color:var(--bad); }
  .charts { display:grid; grid-template-columns:repeat(3, 1fr); gap:12px; padding:12px 20px; }
  .chart { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:8px 10px 6px; }
  .chart h2 { font-size:13px; font-weight:600; margin:0 0 4px; color:var(--text); }
  .chart canvas { width:100%; height:190px; display:block; }
  .legend { font-size:11px; color:var(--dim); min-height:16px; }
  .legend span { margin-right:10px; white-space:nowrap; }
  .legend i { display:inline-block; width:10px; height:3px; margin-right:4px; vertical-align:middle; }
  table { border-collapse:collapse; width:calc(100% - 40px); margin:4px 20px 20px; font-size:13px; }
  th, td { text-align:right; padding:5px 8px; border-bottom:1px solid var(--line); white-space:nowrap; }
  th:first-child, td:first-child { text-align:left; }
  th { color:var(--dim); font-weight:500; }
  @media (max-width: 1100px) { .tiles { grid-template-columns:repeat(3, 1fr); } .charts { grid-template-columns:1fr 1fr; } }
</style>
</head>
<body data-polls="0">
<header>
  <h1>cacheproxy</h1>
  <span class="meta" id="meta">connecting&hellip;</span>
  <span id="status">&nbsp;</span>
</header>
<div id="banner"></div>
<section class="tiles">
  <div class="tile"><div class="label">Hit ratio</div><div class="value" id="t-hit">&ndash;</div><div class="sub" id="t-hit-sub">cached routes, last interval</div></div>
  <div class="tile"><div class="label">Requests / s</div><div class="value" id="t-rps">&ndash;</div><div class="sub" id="t-rps-sub">&nbsp;</div></div>
  <div class="tile"><div class="label">Latency p99</div><div class="value" id="t-p99">&ndash;</div><div class="sub" id="t-p50">&nbsp;</div></div>
  <div class="tile"><div class="label">Errors (5xx)</div><div class="value" id="t-err">&ndash;</div><div class="sub" id="t-err-sub">&nbsp;</div></div>
  <div class="tile"><div class="label">Upstream</div><div class="value" id="t-up">&ndash;</div><div class="sub" id="t-pool">&nbsp;</div></div>
  <div class="tile"><div class="label">Cache</div><div class="value" id="t-entries">&ndash;</div><div class="sub" id="t-bytes">&nbsp;</div></div>
</section>
<section class="charts">
  <div class="chart"><h2>Requests / s per route</h2><canvas id="c-rps" data-points="0"></canvas><div class="legend" id="l-rps"></div></div>
  <div class="chart"><h2>Hit ratio per route (%)</h2><canvas id="c-hit" data-points="0"></canvas><div class="legend" id="l-hit"></div></div>
  <div class="chart"><h2>Latency p50 per route (ms)</h2><canvas id="c-p50" data-points="0"></canvas><div class="legend" id="l-p50"></div></div>
  <div class="chart"><h2>Latency p99 per route (ms)</h2><canvas id="c-p99" data-points="0"></canvas><div class="legend" id="l-p99"></div></div>
  <div class="chart"><h2>Upstream pool (connections) &amp; health</h2><canvas id="c-pool" data-points="0"></canvas><div class="legend" id="l-pool"></div></div>
  <div class="chart"><h2>Invalidations / s</h2><canvas id="c-inv" data-points="0"></canvas><div class="legend" id="l-inv"></div></div>
</section>
<table id="routes">
  <thead><tr><th>route</th><th>requests</th><th>req/s</th><th>hit ratio</th><th>HIT</th><th>MISS</th><th>STALE</th><th>BYPASS</th>
  <th>coalesced</th><th>entries</th><th>bytes</th><th>evictions</th><th>invalidations</th><th>purged</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th></tr></thead>
  <tbody></tbody>
</table>
<script>
"use strict";
(function () {
  const KEEP = 120;                     // points kept per series (2 minutes at 1 s)
  const params = new URLSearchParams(location.search);
  const interval = Math.max(250, Number(params.get("interval")) || 1000);
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  const palette = ["#58a6ff", "#3fb950", "#d29922", "#f778ba", "#a371f7", "#39c5cf", "#ff7b72", "#e3b341", "#8b949e"];
  const history = [];                   // {t, stats}
  const series = {};                    // chart id -> {name -> [{t, v}]}
  let polls = 0;

  const $ = (id) => document.getElementById(id);
  const fmtNum = (v, d = 0) => v == null || !isFinite(v) ? "\u2013" : v.toLocaleString(undefined, {maximumFractionDigits: d, minimumFractionDigits: d});
  const fmtMs = (v) => v == null ? "\u2013" : v < 1 ? v.toFixed(3) : v < 100 ? v.toFixed(1) : v.toFixed(0);
  const fmtBytes = (b) => { const u = ["B", "KiB", "MiB", "GiB"]; let i = 0; while (b >= 1024 && i < 3) { b /= 1024; i++; } return b.toFixed(i ? 1 : 0) + " " + u[i]; };
  const pct = (v) => v == null ? "\u2013" : (v * 100).toFixed(1) + "%";
  const cls = (el, c) => { el.classList.remove("good", "warn", "bad"); if (c) el.classList.add(c); };

  function quantile(buckets, bounds, q) {
    let total = 0; for (const n of buckets) total += n;
    if (!total) return null;
    const rank = q * total; let seen = 0;
    for (let i = 0; i < buckets.length; i++) {
      const n = buckets[i];
      if (n > 0 && seen + n >= rank) {
        if (i >= bounds.length) return bounds[bounds.length - 1];
        const lo = i ? bounds[i - 1] : 0, hi = bounds[i];
        return lo + (hi - lo) * Math.min(1, Math.max(0, (rank - seen) / n));
      }
      seen += n;
    }
    return bounds[bounds.length - 1];
  }
  const diff = (a, b) => a.map((v, i) => Math.max(0, v - ((b && b[i]) || 0)));

  // The traffic entries of a snapshot: cached routes, triggers, pass-through.
  function traffic(s) {
    const out = [];
    for (const r of s.routes) out.push({name: r.name, cached: true, d: r});
    out.push({name: "passthrough", cached: false, d: s.passthrough});
    for (const t of s.triggers) out.push({name: t.name, cached: false, trigger: true, d: t});
    return out;
  }

  function push(chart, name, t, v) {
    const c = series[chart] || (series[chart] = {});
    const arr = c[name] || (c[name] = []);
    arr.push({t, v});
    while (arr.length > KEEP) arr.shift();
  }

  const chartOpts = {};                 // id -> the options it was last drawn with
  function draw(id, opts) {
    opts = opts || chartOpts[id] || {};
    chartOpts[id] = opts;
    const canvas = $(id), ctx = canvas.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 400, h = canvas.clientHeight || 190;
    canvas.width = w * dpr; canvas.height = h * dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const data = series[id] || {};
    const names = Object.keys(data);
    let tmin = Infinity, tmax = -Infinity, vmax = opts.max || 0, points = 0;
    for (const n of names) for (const p of data[n]) {
      tmin = Math.min(tmin, p.t); tmax = Math.max(tmax, p.t);
      if (p.v != null) { vmax = Math.max(vmax, p.v); points++; }
    }
    canvas.dataset.points = String(points);
    const L = 44, R = 8, T = 8, B = 18;
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#8a96a3"; ctx.strokeStyle = "#27313c"; ctx.lineWidth = 1;
    if (!isFinite(tmin)) { ctx.fillText("waiting for data\u2026", L, h / 2); return; }
    if (tmax - tmin < 10) tmin = tmax - 10;
    if (!opts.max) vmax = vmax > 0 ? vmax * 1.15 : 1;
    const x = (t) => L + (w - L - R) * (t - tmin) / (tmax - tmin);
    const y = (v) => T + (h - T - B) * (1 - v / vmax);
    // Shaded bands (e.g. upstream down).
    if (opts.bands) {
      ctx.fillStyle = "rgba(248,81,73,0.18)";
      for (const b of opts.bands) { const x0 = x(Math.max(b[0], tmin)), x1 = x(b[1]); if (x1 > x0) ctx.fillRect(x0, T, Math.max(2, x1 - x0), h - T - B); }
    }
    ctx.fillStyle = "#8a96a3";
    for (let i = 0; i <= 4; i++) {
      const v = vmax * i / 4, yy = y(v);
      ctx.beginPath(); ctx.moveTo(L, yy); ctx.lineTo(w - R, yy); ctx.stroke();
      ctx.fillText(opts.fmt ? opts.fmt(v) : (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)), 2, yy + 4);
    }
    const secs = Math.round(tmax - tmin);
    ctx.fillText("-" + secs + " s", L, h - 4); ctx.fillText("now", w - R - 22, h - 4);
    const legend = [];
    names.forEach((n, i) => {
      const color = palette[i % palette.length];
      ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2; ctx.beginPath();
      let pen = false, last = null;
      for (const p of data[n]) {
        if (p.v == null) { pen = false; continue; }
        const px = x(p.t), py = y(Math.min(p.v, vmax));
        if (pen) ctx.lineTo(px, py); else ctx.moveTo(px, py);
        pen = true; last = [px, py];
      }
      ctx.stroke();
      if (last) { ctx.beginPath(); ctx.arc(last[0], last[1], 2.5, 0, 2 * Math.PI); ctx.fill(); }
      legend.push('<span><i style="background:' + color + '"></i>' + escapeHtml(n) + "</span>");
    });
    const l = $(id.replace("c-", "l-")); if (l) l.innerHTML = legend.join("");
  }

  function escapeHtml(s) { return String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c])); }

  const downBands = [];
  function update(s) {
    const now = Date.now() / 1000;
    const prev = history.length ? history[history.length - 1] : null;
    history.push({t: now, s}); while (history.length > 5) history.shift();
    // The first sample covers the time since start; later ones the last interval.
    const dt = prev ? Math.max(0.001, now - prev.t) : Math.max(1, s.uptime_seconds);
    const bounds = s.latency_bounds_ms;
    const prevBy = {};
    if (prev) for (const e of traffic(prev.s)) prevBy[(e.trigger ? "t:" : "r:") + e.name] = e.d;

    let cachedReq = 0, cachedServed = 0, allReq = 0, all5xx = 0, allBuckets = null;
    const rowData = [];
    for (const e of traffic(s)) {
      const p = prevBy[(e.trigger ? "t:" : "r:") + e.name];
      const req = e.d.requests - (p ? p.requests : 0);
      const bc = e.d.responses.by_cache, pbc = p ? p.responses.by_cache : {};
      const served = (bc.HIT - (pbc.HIT || 0)) + (bc.STALE - (pbc.STALE || 0));
      const buckets = diff(e.d.latency_ms.buckets, p && p.latency_ms.buckets);
      const e5 = e.d.responses.by_status["5xx"] - (p ? p.responses.by_status["5xx"] : 0);
      allReq += req; all5xx += e5;
      allBuckets = allBuckets ? allBuckets.map((v, i) => v + buckets[i]) : buckets.slice();
      if (e.cached) { cachedReq += req; cachedServed += served; }
      if (!e.trigger) {
        push("c-rps", e.name, now, req / dt);
        if (e.cached) push("c-hit", e.name, now, req > 0 ? 100 * served / req : null);
        push("c-p50", e.name, now, quantile(buckets, bounds, 0.5));
        push("c-p99", e.name, now, quantile(buckets, bounds, 0.99));
      }
      if (e.cached) rowData.push({e, rps: req / dt});
    }
    // Invalidations per second: trigger firings, entries they dropped, purges.
    let fired = 0, dropped = 0, purged = 0;
    for (const t of s.triggers) {
      const p = prevBy["t:" + t.name];
      fired += t.fired - (p ? p.fired : 0);
      dropped += t.entries_dropped - (p ? p.entries_dropped : 0);
    }
    for (const r of s.routes) { const p = prevBy["r:" + r.name]; purged += r.purged - (p ? p.purged : 0); }
    push("c-inv", "writes fired", now, fired / dt);
    push("c-inv", "entries dropped", now, dropped / dt);
    push("c-inv", "entries purged", now, purged / dt);
    const u = s.upstream;
    push("c-pool", "active", now, u.active);
    push("c-pool", "idle", now, u.idle);
    push("c-pool", "open", now, u.open);
    push("c-pool", "waiting", now, u.waiting);
    if (!u.healthy) {
      const last = downBands[downBands.length - 1];
      if (last && prev && last[1] >= prev.t - 0.01) last[1] = now; else downBands.push([prev ? prev.t : now - 1, now]);
    }

    // Tiles.
    const hit = cachedReq > 0 ? cachedServed / cachedReq : (prev ? null : s.totals.hit_ratio);
    const th = $("t-hit"); th.textContent = pct(hit);
    cls(th, hit == null ? null : hit >= 0.7 ? "good" : hit >= 0.3 ? "warn" : "bad");
    $("t-hit-sub").textContent = "cached routes, last " + (prev ? Math.round(dt) + " s" : "since start") + " \u00b7 total " + pct(s.totals.hit_ratio);
    $("t-rps").textContent = fmtNum(allReq / dt, 1);
    $("t-rps-sub").textContent = fmtNum(s.totals.requests) + " since start";
    const p99 = allBuckets ? quantile(allBuckets, bounds, 0.99) : null, p50 = allBuckets ? quantile(allBuckets, bounds, 0.5) : null;
    $("t-p99").textContent = p99 == null ? "\u2013" : fmtMs(p99) + " ms";
    $("t-p50").textContent = "p50 " + (p50 == null ? "\u2013" : fmtMs(p50) + " ms");
    const er = allReq > 0 ? all5xx / allReq : 0, te = $("t-err");
    te.textContent = pct(er); cls(te, er === 0 ? "good" : er < 0.01 ? "warn" : "bad");
    $("t-err-sub").textContent = fmtNum(s.totals.responses_5xx) + " since start (" + pct(s.totals.error_rate) + ")";
    const tu = $("t-up"); tu.textContent = u.healthy ? "UP" : "DOWN"; cls(tu, u.healthy ? "good" : "bad");
    $("t-pool").textContent = "pool " + u.active + " active / " + u.idle + " idle / " + u.pool_size + " max \u00b7 " + fmtNum(u.timeouts) + " timeouts";
    let entries = 0, bytes = 0; for (const r of s.routes) { entries += r.entries; bytes += r.bytes; }
    $("t-entries").textContent = fmtNum(entries);
    $("t-bytes").textContent = "entries \u00b7 " + fmtBytes(bytes) + " \u00b7 " + s.coalescer.in_flight + " fills in flight";
    $("meta").textContent = "v" + s.version + " \u00b7 config " + s.config_version + " \u00b7 up " + fmtNum(s.uptime_seconds, 0) + " s \u00b7 RSS " + fmtBytes(s.rss_bytes) + " \u00b7 " + s.totals.client_connections + " client connections" +
      (s.tunnels ? " \u00b7 " + s.tunnels.open + " tunnels open (" + fmtBytes(s.tunnels.bytes_up + s.tunnels.bytes_down) + ")" : "");

    // Table.
    const rows = rowData.map(({e, rps}) => {
      const r = e.d, bc = r.responses.by_cache, l = r.latency_ms;
      return "<tr><td>" + escapeHtml(r.name) + "</td><td>" + fmtNum(r.requests) + "</td><td>" + fmtNum(rps, 1) + "</td><td>" + pct(r.hit_ratio) +
        "</td><td>" + fmtNum(bc.HIT) + "</td><td>" + fmtNum(bc.MISS) + "</td><td>" + fmtNum(bc.STALE) + "</td><td>" + fmtNum(bc.BYPASS) +
        "</td><td>" + fmtNum(r.coalesced) + "</td><td>" + fmtNum(r.entries) + "</td><td>" + fmtBytes(r.bytes) + "</td><td>" + fmtNum(r.evictions) +
        "</td><td>" + fmtNum(r.invalidations) + "</td><td>" + fmtNum(r.purged) + "</td><td>" + fmtMs(l.p50) + "</td><td>" + fmtMs(l.p90) + "</td><td>" + fmtMs(l.p99) + "</td></tr>";
    });
    document.querySelector("#routes tbody").innerHTML = rows.join("") || '<tr><td colspan="17">no cached routes</td></tr>';

    draw("c-rps");
    draw("c-hit", {max: 100, fmt: (v) => v.toFixed(0) + "%"});
    draw("c-p50");
    draw("c-p99");
    draw("c-pool", {bands: downBands});
    draw("c-inv");
  }

  async function poll() {
    try {
      const res = await fetch("/stats", {cache: "no-store", headers: token ? {Authorization: "Bearer " + token} : {}});
      if (res.status === 401) throw new Error("this admin listener needs its token: open /dashboard#token=YOUR_TOKEN");
      if (!res.ok) throw new Error("/stats answered " + res.status);
      update(await res.json());
      polls++;
      document.body.dataset.polls = String(polls);
      $("banner").style.display = "none";
      $("status").textContent = "updated " + new Date().toLocaleTimeString();
    } catch (err) {
      $("banner").textContent = String(err.message || err);
      $("banner").style.display = "block";
      $("status").textContent = "not updating";
    } finally {
      setTimeout(poll, interval);
    }
  }
  window.addEventListener("resize", () => ["c-rps", "c-hit", "c-p50", "c-p99", "c-pool", "c-inv"].forEach((id) => draw(id)));
  poll();
})();
</script>
</body>
</html>
)HTML";

}  // namespace

std::string_view dashboard_html() { return kDashboard; }

}  // namespace cacheproxy::admin
