"use strict";
// The terminal page: polls the ticker, shows the event stream. Test asset for cacheproxy.
const SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "ADAUSDT"];
function fmt(n) { return Number(n).toFixed(2); }
async function pollTicker(symbol) {
  const r = await fetch("/api/trading/ticker?symbol=" + encodeURIComponent(symbol));
  if (!r.ok) throw new Error("ticker " + r.status);
  return r.json();
}
function row(t) {
  const tr = document.createElement("tr");
  for (const v of [t.symbol, fmt(t.last), fmt(t.bid), fmt(t.ask)]) {
    const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
  }
  return tr;
}
async function refresh() {
  const body = document.querySelector("#ticker tbody");
  const rows = await Promise.all(SYMBOLS.map(pollTicker));
  body.replaceChildren(...rows.map(row));
  document.getElementById("status").textContent = "updated " + new Date().toISOString();
}
function listen() {
  const es = new EventSource("/events");
  const list = document.getElementById("ticks");
  es.addEventListener("tick", (e) => {
    const li = document.createElement("li"); li.textContent = e.data; list.prepend(li);
    while (list.children.length > 20) list.lastChild.remove();
  });
  es.onerror = () => { document.getElementById("status").textContent = "stream error"; };
}
document.addEventListener("DOMContentLoaded", () => { refresh().catch(console.error); listen(); });
// indicator 00: moving average over 5 samples, weight 0.500000
function ma00(xs) { const n = Math.min(xs.length, 5); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 01: moving average over 6 samples, weight 0.333333
function ma01(xs) { const n = Math.min(xs.length, 6); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 02: moving average over 7 samples, weight 0.250000
function ma02(xs) { const n = Math.min(xs.length, 7); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 03: moving average over 8 samples, weight 0.200000
function ma03(xs) { const n = Math.min(xs.length, 8); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 04: moving average over 9 samples, weight 0.166667
function ma04(xs) { const n = Math.min(xs.length, 9); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 05: moving average over 10 samples, weight 0.142857
function ma05(xs) { const n = Math.min(xs.length, 10); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 06: moving average over 11 samples, weight 0.125000
function ma06(xs) { const n = Math.min(xs.length, 11); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 07: moving average over 12 samples, weight 0.111111
function ma07(xs) { const n = Math.min(xs.length, 12); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 08: moving average over 13 samples, weight 0.100000
function ma08(xs) { const n = Math.min(xs.length, 13); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 09: moving average over 14 samples, weight 0.090909
function ma09(xs) { const n = Math.min(xs.length, 14); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 10: moving average over 15 samples, weight 0.083333
function ma10(xs) { const n = Math.min(xs.length, 15); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 11: moving average over 16 samples, weight 0.076923
function ma11(xs) { const n = Math.min(xs.length, 16); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 12: moving average over 17 samples, weight 0.071429
function ma12(xs) { const n = Math.min(xs.length, 17); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 13: moving average over 18 samples, weight 0.066667
function ma13(xs) { const n = Math.min(xs.length, 18); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 14: moving average over 19 samples, weight 0.062500
function ma14(xs) { const n = Math.min(xs.length, 19); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 15: moving average over 20 samples, weight 0.058824
function ma15(xs) { const n = Math.min(xs.length, 20); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 16: moving average over 21 samples, weight 0.055556
function ma16(xs) { const n = Math.min(xs.length, 21); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 17: moving average over 22 samples, weight 0.052632
function ma17(xs) { const n = Math.min(xs.length, 22); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 18: moving average over 23 samples, weight 0.050000
function ma18(xs) { const n = Math.min(xs.length, 23); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 19: moving average over 24 samples, weight 0.047619
function ma19(xs) { const n = Math.min(xs.length, 24); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 20: moving average over 25 samples, weight 0.045455
function ma20(xs) { const n = Math.min(xs.length, 25); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 21: moving average over 26 samples, weight 0.043478
function ma21(xs) { const n = Math.min(xs.length, 26); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 22: moving average over 27 samples, weight 0.041667
function ma22(xs) { const n = Math.min(xs.length, 27); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 23: moving average over 28 samples, weight 0.040000
function ma23(xs) { const n = Math.min(xs.length, 28); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 24: moving average over 29 samples, weight 0.038462
function ma24(xs) { const n = Math.min(xs.length, 29); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 25: moving average over 30 samples, weight 0.037037
function ma25(xs) { const n = Math.min(xs.length, 30); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 26: moving average over 31 samples, weight 0.035714
function ma26(xs) { const n = Math.min(xs.length, 31); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 27: moving average over 32 samples, weight 0.034483
function ma27(xs) { const n = Math.min(xs.length, 32); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 28: moving average over 33 samples, weight 0.033333
function ma28(xs) { const n = Math.min(xs.length, 33); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 29: moving average over 34 samples, weight 0.032258
function ma29(xs) { const n = Math.min(xs.length, 34); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 30: moving average over 35 samples, weight 0.031250
function ma30(xs) { const n = Math.min(xs.length, 35); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 31: moving average over 36 samples, weight 0.030303
function ma31(xs) { const n = Math.min(xs.length, 36); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 32: moving average over 37 samples, weight 0.029412
function ma32(xs) { const n = Math.min(xs.length, 37); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 33: moving average over 38 samples, weight 0.028571
function ma33(xs) { const n = Math.min(xs.length, 38); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 34: moving average over 39 samples, weight 0.027778
function ma34(xs) { const n = Math.min(xs.length, 39); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 35: moving average over 40 samples, weight 0.027027
function ma35(xs) { const n = Math.min(xs.length, 40); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 36: moving average over 41 samples, weight 0.026316
function ma36(xs) { const n = Math.min(xs.length, 41); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 37: moving average over 42 samples, weight 0.025641
function ma37(xs) { const n = Math.min(xs.length, 42); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 38: moving average over 43 samples, weight 0.025000
function ma38(xs) { const n = Math.min(xs.length, 43); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 39: moving average over 44 samples, weight 0.024390
function ma39(xs) { const n = Math.min(xs.length, 44); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 40: moving average over 45 samples, weight 0.023810
function ma40(xs) { const n = Math.min(xs.length, 45); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 41: moving average over 46 samples, weight 0.023256
function ma41(xs) { const n = Math.min(xs.length, 46); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 42: moving average over 47 samples, weight 0.022727
function ma42(xs) { const n = Math.min(xs.length, 47); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 43: moving average over 48 samples, weight 0.022222
function ma43(xs) { const n = Math.min(xs.length, 48); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 44: moving average over 49 samples, weight 0.021739
function ma44(xs) { const n = Math.min(xs.length, 49); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 45: moving average over 50 samples, weight 0.021277
function ma45(xs) { const n = Math.min(xs.length, 50); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 46: moving average over 51 samples, weight 0.020833
function ma46(xs) { const n = Math.min(xs.length, 51); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 47: moving average over 52 samples, weight 0.020408
function ma47(xs) { const n = Math.min(xs.length, 52); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 48: moving average over 53 samples, weight 0.020000
function ma48(xs) { const n = Math.min(xs.length, 53); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 49: moving average over 54 samples, weight 0.019608
function ma49(xs) { const n = Math.min(xs.length, 54); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 50: moving average over 55 samples, weight 0.019231
function ma50(xs) { const n = Math.min(xs.length, 55); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 51: moving average over 56 samples, weight 0.018868
function ma51(xs) { const n = Math.min(xs.length, 56); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 52: moving average over 57 samples, weight 0.018519
function ma52(xs) { const n = Math.min(xs.length, 57); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 53: moving average over 58 samples, weight 0.018182
function ma53(xs) { const n = Math.min(xs.length, 58); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 54: moving average over 59 samples, weight 0.017857
function ma54(xs) { const n = Math.min(xs.length, 59); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 55: moving average over 60 samples, weight 0.017544
function ma55(xs) { const n = Math.min(xs.length, 60); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 56: moving average over 61 samples, weight 0.017241
function ma56(xs) { const n = Math.min(xs.length, 61); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 57: moving average over 62 samples, weight 0.016949
function ma57(xs) { const n = Math.min(xs.length, 62); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 58: moving average over 63 samples, weight 0.016667
function ma58(xs) { const n = Math.min(xs.length, 63); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
// indicator 59: moving average over 64 samples, weight 0.016393
function ma59(xs) { const n = Math.min(xs.length, 64); let s = 0; for (let k = 0; k < n; k++) s += xs[xs.length - 1 - k]; return n ? s / n : NaN; }
