// app.js -- the HomeIQ dashboard. Plain JS, no build step; every URL is
// relative (the page also works under a reverse-proxy prefix). Data comes
// from admin-api only: api/v1/health, overview, entities, series, homes, the
// events/stream SSE tail (read with fetch, so it can carry the API token) and
// dead-letters. Charts: Chart.js (Debian's
// libjs-chart.js, served at vendor/chart.min.js).
"use strict";

const $ = (sel) => document.querySelector(sel);
const LEVEL_WORD = { ok: "✓ OK", degraded: "! Degraded", down: "✗ Down", unknown: "? Unknown" };
const HOP_TITLE = { "home-assistant": "Home Assistant", "websocket-ingestion": "Ingestion",
  "enrichment-pipeline": "Enrichment", "data-storage": "Storage", store: "Store" };
const COLORS = ["#1a56db", "#c2410c", "#047857", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d"];

function el(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k != null) e.append(k);
  return e;
}
const fmtInt = (n) => (n == null ? "–" : Number(n).toLocaleString("en"));
function fmtBytes(n) {
  if (n == null) return "–";
  const u = ["B", "KB", "MB", "GB", "TB"]; let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + u[i];
}
function fmtTime(iso) {
  const d = new Date(iso);
  return isNaN(d) ? String(iso) : d.toLocaleString("en-GB", { hour12: false });
}
// The API token (docs/SECURITY.md), when the deployment has one: from a
// "#token=..." fragment (never sent to a server) or typed into the form, kept
// in this tab's sessionStorage only.
let token = sessionStorage.getItem("homeiq-token");
(() => {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return;
  token = decodeURIComponent(m[1]);
  sessionStorage.setItem("homeiq-token", token);
  history.replaceState(null, "", location.pathname + location.search);
})();
function authHeaders(extra) {
  const h = Object.assign({ Accept: "application/json" }, extra || {});
  if (token) h.Authorization = "Bearer " + token;
  return h;
}
function needToken() {
  $("#auth").hidden = false;
  $("#auth-state").textContent = token ? "That token was refused." : "";
}
// The home every read is about (issue 18): "" = all homes. The selector is
// shown when data-storage lists homes (GET api/v1/homes; 501 on a backend
// that cannot).
const homeId = () => $("#home").value;
function withHome(url) {
  const h = homeId();
  return h ? url + (url.includes("?") ? "&" : "?") + "home=" + encodeURIComponent(h) : url;
}
async function getJSON(url) {
  const r = await fetch(url, { headers: authHeaders() });
  if (r.status === 401) needToken();
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  return { status: r.status, body };
}

// ---- pipeline --------------------------------------------------------------
function hopFacts(h) {
  const d = h.detail || {};
  if (h.name === "websocket-ingestion" && d.spool) {
    // depth: not yet acknowledged by storage; backlog: not yet sent at all
    let f = `spool depth ${fmtInt(d.spool.depth)} · backlog ${fmtInt(d.spool.unsent)} unsent · received ${fmtInt(d.events && d.events.received)}`;
    const b = d.backfill;
    if (b && b.state && b.state !== "off")
      f += ` · backfill ${b.state}` + (b.entities ? ` ${fmtInt(b.entities_done)}/${fmtInt(b.entities)} entities` : "") + `, ${fmtInt(b.events_total)} events`;
    return f;
  }
  if (h.name === "data-storage" && d.pending_requests != null) return `pending requests ${d.pending_requests}`;
  if (h.name === "store" && d.backend) return d.backend + (d.path ? ` · ${d.path}` : d.url ? ` · ${d.url}` : "");
  if (h.name === "home-assistant" && d.url) return d.url;
  return "";
}
function renderHealth(status, body) {
  const list = $("#hops");
  const hops = (body && body.hops) || [];
  list.replaceChildren(...hops.map((h) => {
    const li = el("li", { id: "hop-" + h.name, class: "level-" + h.level, "data-level": h.level });
    li.append(el("span", { class: "name", text: HOP_TITLE[h.name] || h.name }),
      el("span", { class: "level", text: LEVEL_WORD[h.level] || h.level }));
    if (h.reason) li.append(el("span", { class: "reason", text: h.reason }));
    const f = hopFacts(h);
    if (f) li.append(el("span", { class: "facts", text: f }));
    return li;
  }));
  const o = $("#overall");
  if (!body) {
    o.className = "level-down";
    o.querySelector(".badge").textContent = "✗";
    o.querySelector(".text").textContent = "admin-api does not answer";
    return;
  }
  const healthy = status === 200;
  o.className = healthy ? "level-ok" : "level-down";
  o.querySelector(".badge").textContent = healthy ? "✓" : "✗";
  o.querySelector(".text").textContent = healthy ? "Every service is healthy"
    : `Unhealthy: ${HOP_TITLE[body.failing] || body.failing || "?"}${body.reason ? " – " + body.reason : ""}`;
}
async function pollHealth() {
  try { const r = await getJSON("api/v1/health"); renderHealth(r.status, r.body); }
  catch (e) { renderHealth(0, null); }
}

let spark = null;
function renderOverview(o) {
  $("#total-events").textContent = fmtInt(o.events_total);
  $("#total-rate").textContent = o.events_per_s == null ? "–" : o.events_per_s.toFixed(1);
  $("#total-dead").textContent = fmtInt(o.dead_letters_total);
  $("#total-spool").textContent = fmtInt(o.ingestion && o.ingestion.spool_depth);
  $("#total-entities").textContent = fmtInt(o.entities);
  $("#total-size").textContent = fmtBytes(o.store_bytes);
  const pd = Object.entries(o.per_domain_per_s || {}).slice(0, 6).map(([d, r]) => `${d || "(none)"} ${r.toFixed(2)}/s`);
  $("#per-domain").textContent = pd.length ? "By domain: " + pd.join(", ") : "";
  const per = o.per_second || [];
  if (!window.Chart) return;
  const labels = per.map((_, i) => i - per.length + 1);
  if (!spark) {
    spark = new Chart($("#sparkline"), {
      type: "line",
      data: { labels, datasets: [{ data: per, borderColor: COLORS[0], backgroundColor: "rgba(26,86,219,.15)", fill: true, pointRadius: 0, borderWidth: 1.5, tension: 0.2 }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { title: (it) => `${-it[0].label} s ago` } } },
        scales: { x: { display: false }, y: { beginAtZero: true, ticks: { maxTicksLimit: 3 } } } },
    });
  } else {
    spark.data.labels = labels; spark.data.datasets[0].data = per; spark.update("none");
  }
}
async function pollOverview() {
  try { const r = await getJSON(withHome("api/v1/overview")); if (r.status === 200 && r.body) renderOverview(r.body); }
  catch (e) { /* shown by the health boxes */ }
}

// ---- live tail ---------------------------------------------------------------
const tail = { ctrl: null, lastId: null, paused: false, max: 200, filters: {} };
function showRecord(rec) {
  $("#record-json").textContent = JSON.stringify(rec, null, 2);
  const d = $("#record");
  if (d.showModal) d.showModal(); else d.setAttribute("open", "");
}
function tailRow(ev) {
  const tr = el("tr", { tabindex: "0", "data-seq": ev.seq, class: "fresh", "aria-label": `${ev.entity_id || ev.event_type} at ${ev.time_fired}, open the full record` },
    el("td", { text: fmtTime(ev.time_fired) }), el("td", { text: ev.entity_id || "—" }),
    el("td", { class: "wrap", text: ev.state == null ? (ev.event_type === "state_changed" ? "(removed)" : "") : ev.state }),
    el("td", { text: ev.event_type }));
  tr.addEventListener("click", () => showRecord(ev));
  tr.addEventListener("keydown", (k) => { if (k.key === "Enter" || k.key === " ") { k.preventDefault(); showRecord(ev); } });
  return tr;
}
function tailState(text) { $("#tail-state").textContent = text; }
function tailMessage(block) {
  let id = null, type = "message", data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("id: ")) id = line.slice(4);
    else if (line.startsWith("event: ")) type = line.slice(7);
    else if (line.startsWith("data: ")) data += line.slice(6);
  }
  if (type === "event") {
    let ev; try { ev = JSON.parse(data); } catch (e) { return; }
    tail.lastId = id || ev.seq;
    if (!performance.getEntriesByName("homeiq-tail").length) performance.mark("homeiq-tail");
    const body = $("#tail tbody");
    body.prepend(tailRow(ev));
    while (body.rows.length > tail.max) body.deleteRow(body.rows.length - 1);
    tailState("Live");
  } else if (type === "upstream-error") {
    let why = "data-storage unavailable"; try { why = JSON.parse(data).error; } catch (e) { /* keep default */ }
    tailState("Waiting: " + why);
  }
}
function tailClose() { if (tail.ctrl) tail.ctrl.abort(); tail.ctrl = null; }
// The SSE stream read with fetch (EventSource cannot send the token). On a
// reconnect it sends Last-Event-ID itself: the stream resumes after the last
// event shown, with no gap and no repeat.
async function tailOpen(backlog) {
  tailClose();
  const ctrl = new AbortController();
  tail.ctrl = ctrl;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(tail.filters)) if (v) q.set(k, v);
  if (homeId()) q.set("home", homeId());
  const extra = {};
  if (tail.lastId != null) extra["Last-Event-ID"] = String(tail.lastId); else q.set("backlog", backlog);
  try {
    const r = await fetch("api/v1/events/stream?" + q.toString(), { headers: authHeaders(extra), signal: ctrl.signal });
    if (r.status === 401) { needToken(); tailState("Needs the API token"); return; }
    if (!r.ok) {
      let why = r.status; try { why = (await r.json()).error; } catch (e) { /* keep the status */ }
      tailState("Not live: " + why);
      // a filter storage refuses (400 naming it) or cannot apply (501): asking again cannot help
      if (r.status === 400 || r.status === 501) return;
    } else {
      tailState(tail.paused ? "Paused" : "Live");
      const reader = r.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n\n")) >= 0) { tailMessage(buf.slice(0, i)); buf = buf.slice(i + 2); }
      }
    }
  } catch (e) {
    if (e.name === "AbortError") return;
  }
  if (tail.ctrl === ctrl && !tail.paused) { tailState("Reconnecting…"); setTimeout(() => { if (tail.ctrl === ctrl) tailOpen(0); }, 1000); }
}
function tailApplyFilters(ev) {
  if (ev) ev.preventDefault();
  const f = new FormData($("#tail-filters"));
  tail.filters = { entity_id: f.get("entity_id").trim(), domain: f.get("domain").trim(), event_type: f.get("event_type").trim(),
    area: f.get("area").trim() };
  tail.lastId = null;
  $("#tail tbody").replaceChildren();
  if (!tail.paused) tailOpen(50);
}
function tailTogglePause() {
  tail.paused = !tail.paused;
  $("#tail-pause").setAttribute("aria-pressed", String(tail.paused));
  $("#tail-pause").textContent = tail.paused ? "Resume" : "Pause";
  if (tail.paused) { tailClose(); tailState("Paused (resumes without a gap)"); }
  else tailOpen(50); // continues after the last event shown: no gap, no repeat
}

// ---- history -----------------------------------------------------------------
const hist = { selected: [], numeric: null, timeline: null, entities: [] };
async function loadEntities() {
  try {
    const r = await getJSON(withHome("api/v1/entities?limit=10000"));
    if (r.status !== 200) return;
    hist.entities = r.body.entities;
    $("#h-entities").replaceChildren(...hist.entities.map((e) => el("option", { value: e.entity_id, label: `${e.entity_id} (${e.state ?? "–"})` })));
  } catch (e) { /* retried on the next load */ }
}
function histRange() {
  const v = document.querySelector('input[name="range"]:checked').value;
  $("#h-custom").hidden = v !== "custom";
  if (v !== "custom") { const end = new Date(); return { start: new Date(end - Number(v) * 1000), end }; }
  const s = new Date($("#h-start").value), e = new Date($("#h-end").value);
  return isNaN(s) || isNaN(e) || s >= e ? null : { start: s, end: e };
}
function renderChips() {
  $("#h-selected").replaceChildren(...hist.selected.map((id) => {
    const b = el("button", { type: "button", "aria-label": "Remove " + id, text: "×" });
    b.addEventListener("click", () => { hist.selected = hist.selected.filter((x) => x !== id); renderChips(); drawHistory(); });
    return el("li", {}, el("span", { text: id }), b);
  }));
}
const timeTicks = (span) => (v) => {
  const d = new Date(v);
  return span > 20 * 3600e3 ? d.toLocaleDateString("en-GB", { day: "2-digit", month: "short" }) + " " + d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit" })
    : d.toLocaleTimeString("en-GB", { hour: "2-digit", minute: "2-digit", hour12: false });
};
let histGen = 0; // a newer drawHistory() supersedes an older one still loading
async function drawHistory() {
  const gen = ++histGen;
  const range = histRange();
  const status = $("#h-status");
  if (!range) { status.textContent = "Custom range: choose a start before the end."; return; }
  if (!hist.selected.length) { status.textContent = "Choose an entity to see its history."; $("#h-numeric-box").hidden = $("#h-timeline-box").hidden = true; return; }
  status.textContent = "Loading…";
  const q = `start=${encodeURIComponent(range.start.toISOString())}&end=${encodeURIComponent(range.end.toISOString())}&points=400`;
  const results = await Promise.all(hist.selected.map((id) => getJSON(withHome(`api/v1/entities/${encodeURIComponent(id)}/series?${q}`)).catch(() => ({ status: 0 }))));
  if (gen !== histGen) return;
  const numeric = [], timeline = [], problems = [];
  results.forEach((r, i) => {
    if (r.status !== 200) { problems.push(`${hist.selected[i]}: ${(r.body && r.body.error) || "unavailable"}`); return; }
    (r.body.kind === "numeric" ? numeric : timeline).push(r.body);
  });
  if (!window.Chart) { status.textContent = "The chart library (vendor/chart.min.js) did not load."; return; }
  const span = range.end - range.start;
  const xScale = { type: "linear", min: +range.start, max: +range.end, ticks: { callback: timeTicks(span), maxTicksLimit: 8 } };
  drawNumeric(numeric, xScale);
  drawTimeline(timeline, xScale);
  const n = numeric.reduce((a, s) => a + s.buckets.length, 0), m = timeline.reduce((a, s) => a + s.segments.length, 0);
  status.textContent = `${n} points, ${m} state segments${problems.length ? ". " + problems.join("; ") : ""}`;
  $("#history").setAttribute("data-drawn", String(n + m));
}
function drawNumeric(series, xScale) {
  const box = $("#h-numeric-box");
  box.hidden = !series.length;
  if (hist.numeric) { hist.numeric.destroy(); hist.numeric = null; }
  if (!series.length) return;
  const datasets = [];
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = (k) => s.buckets.map((b) => ({ x: Date.parse(b.t), y: b[k] }));
    datasets.push({ label: s.entity_id + " min", data: pts("min"), borderWidth: 0, pointRadius: 0, fill: false, band: true });
    datasets.push({ label: s.entity_id + " range", data: pts("max"), borderWidth: 0, pointRadius: 0, backgroundColor: c + "22", fill: "-1", band: true });
    datasets.push({ label: s.entity_id, data: pts("mean"), borderColor: c, backgroundColor: c, borderWidth: 2, pointRadius: s.buckets.length < 60 ? 2 : 0, borderDash: i % 2 ? [6, 3] : [] });
  });
  hist.numeric = new Chart($("#h-numeric"), {
    type: "line", data: { datasets },
    options: { animation: false, responsive: true, maintainAspectRatio: false, parsing: false, normalized: true,
      interaction: { mode: "nearest", intersect: false },
      plugins: { legend: { labels: { filter: (it, data) => !data.datasets[it.datasetIndex].band } },
        tooltip: { filter: (it) => !it.dataset.band, callbacks: { title: (it) => fmtTime(it[0].parsed.x) } } },
      scales: { x: xScale } },
  });
}
// The timeline's states in words (colour is never the only signal; a canvas says nothing to a screen reader).
function timelineText(series) {
  $("#h-timeline-text").hidden = !series.length;
  $("#h-timeline-text ul").replaceChildren(...series.map((s) => el("li", {},
    el("strong", { text: s.entity_id + ": " }),
    s.segments.map((g) => `${g.state == null ? "(none)" : g.state} ${fmtTime(g.start)} – ${fmtTime(g.end)}`).join("; "))));
}
function drawTimeline(series, xScale) {
  const box = $("#h-timeline-box");
  box.hidden = !series.length;
  timelineText(series);
  if (hist.timeline) { hist.timeline.destroy(); hist.timeline = null; }
  if (!series.length) return;
  box.style.height = 70 + 40 * series.length + "px";
  const states = [...new Set(series.flatMap((s) => s.segments.map((g) => String(g.state))))];
  const datasets = states.map((st, i) => ({
    label: st, backgroundColor: COLORS[(i + 2) % COLORS.length], borderColor: "#fff", borderWidth: 1, borderSkipped: false,
    data: series.flatMap((s) => s.segments.filter((g) => String(g.state) === st).map((g) => ({ x: [Date.parse(g.start), Date.parse(g.end)], y: s.entity_id }))),
  }));
  hist.timeline = new Chart($("#h-timeline"), {
    type: "bar", data: { labels: series.map((s) => s.entity_id), datasets },
    options: { indexAxis: "y", animation: false, responsive: true, maintainAspectRatio: false,
      plugins: { tooltip: { callbacks: { label: (it) => `${it.dataset.label}: ${fmtTime(it.raw.x[0])} – ${fmtTime(it.raw.x[1])}` } } },
      scales: { x: xScale, y: { stacked: true } } },
  });
}
function histAdd(ev) {
  ev.preventDefault();
  const id = $("#h-entity").value.trim();
  if (!id) return;
  if (!hist.selected.includes(id)) hist.selected.push(id);
  $("#h-entity").value = "";
  renderChips();
  drawHistory();
}

// ---- dead letters --------------------------------------------------------------
async function loadDead() {
  try {
    const r = await getJSON(withHome("api/v1/dead-letters?limit=100"));
    if (r.status !== 200) { $("#dead-status").textContent = (r.body && r.body.error) || "unavailable"; return; }
    $("#dead-status").textContent = `${r.body.count} shown, newest first`;
    $("#dead-table tbody").replaceChildren(...r.body.dead_letters.map((d) => el("tr", {},
      el("td", { text: fmtTime(d.received_at) }), el("td", { text: d.source }), el("td", { class: "wrap", text: d.error }),
      el("td", { class: "wrap" }, el("details", {}, el("summary", { text: "show" }), el("pre", { text: JSON.stringify(d.event, null, 2) }))))));
  } catch (e) { $("#dead-status").textContent = "admin-api does not answer"; }
}

// ---- homes -------------------------------------------------------------------------
let homesTimer = null, homesNone = false;
async function loadHomes() {
  if (homesNone) return; // the backend lists none: asked once (the first answer may come before the timer exists)
  try {
    const r = await getJSON("api/v1/homes");
    if (r.status === 501) { homesNone = true; if (homesTimer) { clearInterval(homesTimer); homesTimer = null; } }
    if (r.status !== 200) return;
    const keep = homeId();
    $("#home").replaceChildren(el("option", { value: "", text: "All homes" }),
      ...r.body.homes.map((h) => el("option", { value: h.home_id, text: `${h.home_id} (${fmtInt(h.events)})` })));
    $("#home").value = r.body.homes.some((h) => h.home_id === keep) ? keep : "";
    $("#home-pick").hidden = false;
  } catch (e) { /* no selector: every home */ }
}
function homeChanged() {
  tail.lastId = null; // another home's tail: start again at its head
  $("#tail tbody").replaceChildren();
  if (!tail.paused) tailOpen(50);
  pollOverview(); loadEntities(); loadDead(); drawHistory();
}

// ---- start -----------------------------------------------------------------------
function useToken(ev) {
  ev.preventDefault();
  token = $("#auth-token").value.trim();
  sessionStorage.setItem("homeiq-token", token);
  $("#auth-token").value = "";
  $("#auth").hidden = true;
  pollHealth(); pollOverview(); loadEntities(); loadDead(); tailOpen(50);
}
function start() {
  $("#auth-form").addEventListener("submit", useToken);
  $("#tail-filters").addEventListener("submit", tailApplyFilters);
  $("#f-clear").addEventListener("click", () => { $("#tail-filters").reset(); tailApplyFilters(); });
  $("#tail-pause").addEventListener("click", tailTogglePause);
  $("#history-form").addEventListener("submit", histAdd);
  document.querySelectorAll('input[name="range"]').forEach((r) => r.addEventListener("change", drawHistory));
  $("#h-start").addEventListener("change", drawHistory);
  $("#h-end").addEventListener("change", drawHistory);
  $("#dead-refresh").addEventListener("click", loadDead);
  $("#home").addEventListener("change", homeChanged);
  // "page ready": every first load answered and drawn (bench/page_ready.sh reads the marks)
  Promise.allSettled([pollHealth(), pollOverview(), loadEntities(), loadDead(), loadHomes()])
    .then(() => performance.mark("homeiq-ready"));
  tailOpen(50);
  setInterval(pollHealth, 2000);
  setInterval(pollOverview, 2000);
  setInterval(loadEntities, 30000);
  homesTimer = setInterval(loadHomes, 30000);
}
start();
