// The DistCache dashboard: reads /api/stats and /api/cluster and draws in place.
// No library and no network beyond the node: charts are drawn on <canvas> by this file.
"use strict";

const COLORS = ["#38bdf8", "#f59e0b", "#22c55e", "#a78bfa", "#f472b6", "#2dd4bf", "#fb7185"];
const STATS_EVERY_MS = 1000;
const CLUSTER_EVERY_MS = 2000;

function $(id) { return document.getElementById(id); }

function human(n, digits = 1) {
  if (n === null || n === undefined || Number.isNaN(n)) return "–";
  const abs = Math.abs(n);
  for (const [limit, suffix] of [[1e9, "G"], [1e6, "M"], [1e3, "k"]]) {
    if (abs >= limit) return (n / limit).toFixed(digits) + suffix;
  }
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function setText(id, text) { const el = $(id); if (el.textContent !== text) el.textContent = text; }

function cell(row, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  row.appendChild(td);
  return td;
}

function fillTable(id, rows, build) {
  const body = $(id).querySelector("tbody");
  const fresh = document.createElement("tbody");
  for (const item of rows) { const tr = document.createElement("tr"); build(tr, item); fresh.appendChild(tr); }
  body.replaceWith(fresh);
}

// A line chart of one or more series from the history points, scaled to its own maximum.
function drawChart(canvas, points) {
  const series = canvas.dataset.series.split(",");
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
  if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const scale = canvas.id === "chart-hits" ? 100 : 1;
  let max = 0;
  for (const p of points) for (const s of series) if (p[s] !== null) max = Math.max(max, p[s] * scale);
  max = max > 0 ? max * 1.15 : 1;
  if (canvas.id === "chart-hits") max = 100;  // a ratio: always the whole scale
  const left = 44, bottom = height - 16, top = 6, right = width - 6;
  ctx.strokeStyle = "#23304d"; ctx.fillStyle = "#94a3b8"; ctx.font = "11px system-ui";
  ctx.lineWidth = 1;
  for (let i = 0; i <= 3; i++) {
    const y = top + (bottom - top) * i / 3;
    ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(right, y); ctx.stroke();
    ctx.fillText(human(max * (3 - i) / 3, max < 10 ? 2 : 0), 2, y + 4);
  }
  if (points.length) {
    const span = Math.max(points[points.length - 1].t - points[0].t, 1);
    const label = span >= 120 ? Math.round(span / 60) + " min" : Math.round(span) + " s";
    ctx.fillText("last " + label, left, height - 3);
  }
  let drawn = 0, last = null;
  series.forEach((s, k) => {
    ctx.strokeStyle = COLORS[k]; ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    points.forEach((p, i) => {
      if (p[s] === null || p[s] === undefined) { started = false; return; }
      const x = left + (right - left) * (points.length === 1 ? 1 : i / (points.length - 1));
      const y = bottom - (bottom - top) * (p[s] * scale) / max;
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      drawn++; if (k === 0) last = p[s];
    });
    ctx.stroke();
  });
  // For people and tests alike: how many points are on the chart and the newest value.
  canvas.dataset.points = String(drawn);
  canvas.dataset.last = last === null ? "" : String(last);
  canvas.dataset.t = points.length ? String(points[points.length - 1].t) : "";
}

function drawRing(canvas, nodes) {
  const ctx = canvas.getContext("2d");
  const size = canvas.width, r = size / 2 - 8, c = size / 2;
  ctx.clearRect(0, 0, size, size);
  let angle = -Math.PI / 2;
  const total = nodes.reduce((sum, n) => sum + (n.ring_share || 0), 0) || 1;
  nodes.forEach((n, i) => {
    const sweep = 2 * Math.PI * (n.ring_share || 0) / total;
    ctx.beginPath(); ctx.arc(c, c, r, angle, angle + sweep);
    ctx.strokeStyle = n.state === "up" ? COLORS[i % COLORS.length] : "#ef4444";
    ctx.lineWidth = 18; ctx.stroke();
    angle += sweep;
  });
  ctx.fillStyle = "#e2e8f0"; ctx.font = "600 20px system-ui"; ctx.textAlign = "center";
  ctx.fillText(String(nodes.length), c, c + 4);
  ctx.font = "11px system-ui"; ctx.fillStyle = "#94a3b8";
  ctx.fillText(nodes.length === 1 ? "node" : "nodes", c, c + 20);
  canvas.dataset.nodes = String(nodes.length);
}

function renderStats(s) {
  setText("node-title", `${s.node.id} · ${s.node.host}:${s.node.port} · DistCache ${s.node.version} · up ${human(s.node.uptime_seconds, 0)} s`);
  const badge = $("status");
  badge.textContent = s.node.status; badge.className = "badge " + s.node.status;
  const points = (s.history && s.history.points) || [];
  const latest = points.length ? points[points.length - 1] : null;
  setText("kpi-ops", latest ? human(latest.ops_per_sec) : "–");
  setText("kpi-latency", latest && latest.p50_usec !== null
    ? `${human(latest.p50_usec)} / ${human(latest.p99_usec)}`
    : `${human(s.latency_usec.p50)} / ${human(s.latency_usec.p99)}`);
  const k = s.keyspace;
  setText("kpi-hits", k.hit_ratio === null ? "–" : (k.hit_ratio * 100).toFixed(1) + "%");
  setText("kpi-hits-detail", `${human(k.hits, 0)} / ${human(k.hits + k.misses, 0)} lookups`);
  setText("kpi-memory", bytes(s.memory.used_bytes));
  setText("kpi-memory-detail", s.memory.max_bytes ? `of ${bytes(s.memory.max_bytes)} (${s.memory.policy})` : `no limit · RSS ${bytes(s.memory.rss_bytes)}`);
  setText("kpi-keys", human(k.keys, 0));
  setText("kpi-keys-detail", `${human(k.keys_with_expiry, 0)} with TTL · ${human(k.evicted_keys, 0)} evicted · ${human(k.expired_keys, 0)} expired`);
  setText("kpi-clients", String(s.clients.connected));
  setText("kpi-clients-detail", `of ${human(s.clients.max, 0)} · ${human(s.clients.total_received, 0)} since start`);
  for (const canvas of document.querySelectorAll(".charts canvas")) drawChart(canvas, points);
  const commands = Object.entries(s.commands).sort((a, b) => b[1].calls - a[1].calls);
  fillTable("commands", commands, (tr, [name, c]) => {
    cell(tr, name.toUpperCase()); cell(tr, human(c.calls, 0)); cell(tr, c.usec_per_call.toFixed(2));
    cell(tr, String(c.p50)); cell(tr, String(c.p99)); cell(tr, String(c["p99.9"]));
    cell(tr, String(c.failed_calls)); cell(tr, String(c.rejected_calls));
  });
  fillTable("slowlog", s.slowlog, (tr, e) => {
    cell(tr, String(e.id)); cell(tr, new Date(e.timestamp * 1000).toLocaleTimeString());
    cell(tr, human(e.duration_usec, 0)); cell(tr, e.argv.join(" "), "argv");
    cell(tr, e.client_name ? `${e.client_addr} (${e.client_name})` : e.client_addr);
  });
  setText("slowlog-summary", s.slowlog.length ? `latest ${s.slowlog.length}` : "empty");
  setText("config", JSON.stringify(s.config, null, 2));
}

function renderCluster(c) {
  const nodes = c.nodes || [];
  const up = nodes.filter(n => n.state === "up").length;
  setText("cluster-summary", `${c.enabled ? "" : "single node · "}${up}/${nodes.length} up · replication factor ${c.replication_factor} · ${c.hints_pending} hints pending`);
  drawRing($("ring"), nodes);
  fillTable("nodes", nodes, (tr, n) => {
    tr.dataset.node = n.id; tr.dataset.state = n.state;
    cell(tr, n.id + (n.id === c.self ? " (this)" : "")); cell(tr, n.address || "", "wide");
    const state = document.createElement("span");
    state.className = "state state-" + n.state; state.textContent = n.state;
    cell(tr, "").appendChild(state);
    cell(tr, n.ring_share === null || n.ring_share === undefined ? "–" : (n.ring_share * 100).toFixed(1) + "%");
    const p = n.peer;
    const changes = p && p.breaker_transitions ? ` · ${human(p.breaker_transitions, 0)}×` : "";
    cell(tr, (n.breaker || "–") + changes).title = "state · changes since start";
    const failed = p ? p.errors + p.timeouts : 0;
    const calls = cell(tr, p ? human(p.calls, 0) : "–");
    if (failed) {
      const bad = document.createElement("span");
      bad.className = "failed"; bad.textContent = ` · ${human(failed, 0)} failed`;
      bad.title = `${p.errors} errors, ${p.timeouts} timeouts, ${p.rejected} refused by the breaker`;
      calls.appendChild(bad);
    }
    const l = p && p.latency_usec;
    cell(tr, l && l.samples ? `${human(l.p50)} / ${human(l.p99)}` : "–");
  });
  const r = c.rebalance || {};
  const bar = $("rebalance");
  if (r.active && r.keys_to_move) {
    bar.classList.remove("hidden");
    const done = Math.min(1, r.keys_moved / r.keys_to_move);
    bar.querySelector(".bar").style.width = (done * 100).toFixed(1) + "%";
    bar.querySelector("span").textContent = `rebalancing: ${human(r.keys_moved, 0)} / ${human(r.keys_to_move, 0)} keys`;
  } else {
    bar.classList.add("hidden");
  }
}

async function poll(url, render, every) {
  try {
    const response = await fetch(url, { cache: "no-store" });
    if (response.ok) render(await response.json());
  } catch (err) {
    const badge = $("status");
    badge.textContent = "offline"; badge.className = "badge offline";
  }
  setTimeout(() => poll(url, render, every), every);
}

window.addEventListener("DOMContentLoaded", () => {
  poll("/api/stats", renderStats, STATS_EVERY_MS);
  poll("/api/cluster", renderCluster, CLUSTER_EVERY_MS);
});
