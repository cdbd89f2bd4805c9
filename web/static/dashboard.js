// dashboard.js: the live dashboard at /dashboard. It subscribes to
// system:stats (one message a second; the channel keeps the last 60, which
// fill the charts at once), shows tiles and line charts of the server's
// metrics, the busiest documents and the active users, and raises alerts
// when a metric crosses a threshold set on the page. Any dashboard:*
// channel (fed by POST /api/broadcast) can be added and is rendered
// generically: every number in its messages becomes a tile and a chart.

import { LineChart, fmt, sparkline } from "./chart.js";
import { detectMode, needTokenMessage, openClient, savedIdentity, tokenSource } from "./identity.js";
import { avatar, clock, colorOf, explain, h } from "./util.js";

const main = document.getElementById("main");
const statusEl = document.getElementById("conn-status");
const meEl = document.getElementById("me");

const WINDOW = 120; // points kept per chart
const THRESHOLDS_KEY = "tandem-dashboard:thresholds";
const CHANNELS_KEY = "tandem-dashboard:channels";

const mb = (v) => v / (1 << 20);

/** The metrics of system:stats shown as tiles, in order. */
const METRICS = [
  { key: "connections", label: "Connections" },
  { key: "active_users", label: "Active users" },
  { key: "open_documents", label: "Open documents" },
  { key: "ops_per_sec", label: "Ops / s" },
  { key: "messages_per_sec", label: "Messages / s" },
  { key: "ack_p99_ms", label: "Ack p99 (ms)" },
  { key: "heap_mb", label: "Heap (MiB)" },
  { key: "goroutines", label: "Goroutines" },
  { key: "commits_per_sec", label: "Commits / s" },
  { key: "subscriptions", label: "Subscriptions" },
];

/** Default alert thresholds: an alert fires when a value goes above one. */
const DEFAULT_THRESHOLDS = { ack_p99_ms: 250, heap_mb: 1024, ops_per_sec: 5000, connections: 10000 };

const state = {
  client: null,
  tiles: new Map(), // metric key → {el, value}
  charts: [],
  docSeries: new Map(), // doc id → [ops/s…]
  thresholds: load(THRESHOLDS_KEY, DEFAULT_THRESHOLDS),
  alerting: new Set(),
  last: null,
  channels: new Map(), // channel → {sub, el}
};

function load(key, def) {
  try {
    return { ...def, ...(JSON.parse(localStorage.getItem(key) ?? "null") ?? {}) };
  } catch {
    return { ...def };
  }
}

function save(key, v) {
  try {
    localStorage.setItem(key, JSON.stringify(v));
  } catch {
    // Denied: settings last for this page.
  }
}

// ---------------------------------------------------------------------------
// Start

async function boot() {
  const token = tokenSource();
  let ident;
  if (token) ident = { token };
  else {
    const mode = await detectMode();
    if (mode === "prod") return main.replaceChildren(needTokenMessage());
    // "dev-locked" is fine here: the dashboard needs no HTTP API.
    if (mode === "unreachable") {
      setStatus("reconnecting", "Server unreachable");
      main.replaceChildren(
        h(
          "div",
          { class: "card error-card", role: "alert", id: "unreachable" },
          h("h1", {}, "Server unreachable"),
          h("p", {}, explain({ code: "unreachable" })),
          h("button", { type: "button", class: "primary", onclick: () => boot() }, "Retry now"),
        ),
      );
      setTimeout(boot, 3000);
      return;
    }
    ident = savedIdentity() ?? { id: "", name: "dashboard" };
  }
  const client = openClient(ident);
  state.client = client;
  client.on("status", (s, d) => {
    if (s === "connected") setStatus("connected", "Live");
    else if (s === "reconnecting") setStatus("reconnecting", `Reconnecting${d.attempt ? ` (attempt ${d.attempt})` : ""}…`);
    else if (s === "connecting") setStatus("connecting", "Connecting…");
    else setStatus("disconnected", "Disconnected");
  });
  client.on("connected", ({ user }) => meEl.replaceChildren(avatar(user, " (you)"), h("span", { class: "me-name" }, user.name)));
  render();
}

function setStatus(status, text) {
  statusEl.dataset.status = status;
  statusEl.replaceChildren(h("span", { class: "status-dot", "aria-hidden": "true" }), h("span", { class: "status-text" }, text));
}

// ---------------------------------------------------------------------------
// Layout

function render() {
  const tiles = h("div", { class: "tiles", id: "tiles" });
  for (const m of METRICS) {
    const value = h("div", { class: "value" }, "–");
    const el = h("div", { class: "tile", "data-metric": m.key }, h("div", { class: "label" }, m.label), value);
    state.tiles.set(m.key, { el, value });
    tiles.append(el);
  }
  const updated = h("span", { id: "updated", class: "muted" }, "waiting for the first sample…");
  const charts = [
    new LineChart("Operations and messages per second", [
      { key: "ops_per_sec", label: "ops/s", color: "#2563eb" },
      { key: "messages_per_sec", label: "messages/s", color: "#10b981" },
    ], { points: WINDOW, unit: "s", id: "chart-rates" }),
    new LineChart("Connections", [{ key: "connections", label: "connections", color: "#8b5cf6" }], { points: WINDOW, unit: "s", id: "chart-conns" }),
    new LineChart("Ack latency p99 (ms)", [{ key: "ack_p99_ms", label: "p99", color: "#f97316" }], { points: WINDOW, unit: "s", id: "chart-p99" }),
    new LineChart("Heap (MiB)", [{ key: "heap_mb", label: "heap", color: "#e0457b" }], { points: WINDOW, unit: "s", id: "chart-heap" }),
    new LineChart("Open documents", [{ key: "open_documents", label: "open", color: "#14b8a6" }], { points: WINDOW, unit: "s", id: "chart-docs" }),
    new LineChart("Commits per second", [{ key: "commits_per_sec", label: "commits/s", color: "#6366f1" }], { points: WINDOW, unit: "s", id: "chart-commits" }),
  ];
  state.charts = charts;

  state.docsBody = h("tbody", { id: "doc-stats" });
  state.users = h("ul", { class: "users", id: "active-users" });
  state.usersCount = h("span", { class: "muted" });
  state.alerts = h("ol", { class: "alerts", id: "alerts", "aria-live": "assertive" });

  const thresholdInputs = Object.keys(DEFAULT_THRESHOLDS).map((key) => {
    const label = METRICS.find((m) => m.key === key)?.label ?? key;
    const input = h("input", {
      type: "number",
      id: `th-${key}`,
      min: "0",
      step: "any",
      value: String(state.thresholds[key]),
      class: "narrow-input",
      onchange: () => {
        const v = Number(input.value);
        if (Number.isFinite(v) && v >= 0) {
          state.thresholds[key] = v;
          save(THRESHOLDS_KEY, state.thresholds);
          if (state.last) checkAlerts(state.last);
        }
      },
    });
    return h("label", { for: `th-${key}` }, `${label} above`, input);
  });

  const chanInput = h("input", { id: "channel-name", value: "dashboard:", autocomplete: "off", "aria-describedby": "channel-hint" });
  const chanError = h("p", { class: "form-error", role: "alert", id: "channel-error" });
  state.chanList = h("div", { id: "channels" });
  const chanForm = h(
    "form",
    {
      class: "row",
      onsubmit: (e) => {
        e.preventDefault();
        chanError.textContent = "";
        let name = chanInput.value.trim();
        if (!name.startsWith("dashboard:")) name = `dashboard:${name}`;
        if (!/^dashboard:[\p{L}\p{N}_\-:.@#=]+$/u.test(name)) {
          chanError.textContent = "A channel name is dashboard: followed by letters, digits and _-:.@#=.";
          return;
        }
        addChannel(name, chanError);
        chanInput.value = "dashboard:";
      },
    },
    h("label", { for: "channel-name" }, "Channel"),
    chanInput,
    h("button", { type: "submit", class: "primary", id: "add-channel" }, "Add"),
  );

  main.replaceChildren(
    h(
      "div",
      { class: "dash" },
      h("section", { "aria-labelledby": "server-title" }, h("div", { class: "row" }, h("h1", { id: "server-title", style: { margin: 0 } }, "Server"), updated), h("p", { class: "muted" }, "Live from the system:stats channel, one sample a second."), tiles),
      h("section", { "aria-labelledby": "charts-title" }, h("h2", { id: "charts-title" }, "Live charts"), h("div", { class: "charts" }, charts.map((c) => c.el))),
      h(
        "div",
        { class: "dash-cols" },
        h(
          "section",
          { "aria-labelledby": "docs-title" },
          h("h2", { id: "docs-title" }, "Busiest documents"),
          h("table", {}, h("thead", {}, h("tr", {}, h("th", {}, "Document"), h("th", { class: "num" }, "Ops / s"), h("th", { class: "num" }, "Members"), h("th", {}, "Last 60 s"))), state.docsBody),
        ),
        h("section", { "aria-labelledby": "users-title" }, h("h2", { id: "users-title" }, "Active users ", state.usersCount), state.users),
      ),
      h(
        "section",
        { "aria-labelledby": "alerts-title" },
        h("h2", { id: "alerts-title" }, "Alerts"),
        h("div", { class: "thresholds" }, thresholdInputs),
        state.alerts,
      ),
      h(
        "section",
        { "aria-labelledby": "channels-title" },
        h("h2", { id: "channels-title" }, "Dashboard channels"),
        h("p", { class: "muted", id: "channel-hint" }, "Anything published to a dashboard:* channel (POST /api/broadcast) shows here: each number becomes a tile and a chart."),
        chanForm,
        chanError,
        state.chanList,
      ),
    ),
  );
  state.updated = updated;

  const stats = state.client.subscribe("system:stats", (m) => m.data && onStats(m.data), { since: { offset: 0, epoch: "" } });
  stats.on("error", (err) => (updated.textContent = explain(err, "the server's statistics")));

  const fromURL = new URL(location.href).searchParams.getAll("channel");
  const saved = load(CHANNELS_KEY, { list: [] }).list;
  for (const c of [...saved, ...fromURL]) if (c.startsWith("dashboard:")) addChannel(c, chanError);
}

// ---------------------------------------------------------------------------
// system:stats

function onStats(s) {
  const v = { ...s, heap_mb: mb(s.heap_bytes ?? 0) };
  state.last = v;
  for (const [key, t] of state.tiles) {
    const x = v[key];
    t.value.textContent = fmt(x);
    t.el.dataset.value = String(x ?? "");
  }
  for (const c of state.charts) c.push(v);
  state.updated.textContent = `updated ${clock(s.ts ?? new Date())} · up ${uptime(s.uptime_sec ?? 0)}`;

  // Per-document rates, with a short history for sparklines.
  const seen = new Set();
  for (const d of s.documents ?? []) {
    seen.add(d.id);
    if (!state.docSeries.has(d.id)) state.docSeries.set(d.id, []);
  }
  for (const [id, series] of state.docSeries) {
    const d = (s.documents ?? []).find((x) => x.id === id);
    series.push(d ? d.ops_per_sec : 0);
    if (series.length > 60) series.shift();
    if (!seen.has(id) && series.every((x) => x === 0)) state.docSeries.delete(id);
  }
  const docs = [...(s.documents ?? [])];
  state.docsBody.replaceChildren(
    ...(docs.length
      ? docs.map((d) =>
          h(
            "tr",
            { "data-doc": d.id },
            h("td", {}, h("a", { href: `/#/doc/${encodeURIComponent(d.id)}` }, d.id)),
            h("td", { class: "num", "data-value": String(d.ops_per_sec) }, fmt(d.ops_per_sec)),
            h("td", { class: "num" }, String(d.members)),
            h("td", {}, sparkline(state.docSeries.get(d.id) ?? [], colorOf(d.id))),
          ),
        )
      : [h("tr", {}, h("td", { colspan: "4", class: "muted" }, "No document is open."))]),
  );

  const users = s.users ?? [];
  state.usersCount.textContent = `(${s.active_users ?? users.length})`;
  state.users.replaceChildren(
    ...(users.length
      ? users.map((u) => h("li", { "data-user": u.user?.id ?? "" }, avatar(u.user), u.user?.name ?? u.user?.id, u.connections > 1 ? h("span", { class: "muted" }, ` ×${u.connections}`) : null))
      : [h("li", { class: "muted" }, "Nobody is connected.")]),
  );
  checkAlerts(v);
}

function checkAlerts(v) {
  for (const [key, limit] of Object.entries(state.thresholds)) {
    const x = v[key];
    if (x == null) continue;
    const label = METRICS.find((m) => m.key === key)?.label ?? key;
    const tile = state.tiles.get(key)?.el;
    if (x > limit && !state.alerting.has(key)) {
      state.alerting.add(key);
      alertLine(`${clock(new Date())} ${label} is ${fmt(x)}, above ${fmt(limit)}`, false, key);
    } else if (x <= limit && state.alerting.has(key)) {
      state.alerting.delete(key);
      alertLine(`${clock(new Date())} ${label} is back to ${fmt(x)} (limit ${fmt(limit)})`, true, key);
    }
    tile?.classList.toggle("alerting", state.alerting.has(key));
  }
}

function alertLine(text, cleared, key) {
  state.alerts.prepend(h("li", { class: cleared ? "cleared" : "", "data-metric": key }, cleared ? "✓ " : "⚠ ", text));
  while (state.alerts.children.length > 20) state.alerts.lastChild.remove();
}

function uptime(secs) {
  const d = Math.floor(secs / 86400);
  const hh = Math.floor((secs % 86400) / 3600);
  const mm = Math.floor((secs % 3600) / 60);
  const ss = secs % 60;
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${mm}m` : mm ? `${mm}m ${ss}s` : `${ss}s`;
}

// ---------------------------------------------------------------------------
// dashboard:* channels, rendered generically

function addChannel(name, errorEl) {
  if (state.channels.has(name)) return;
  const tiles = h("div", { class: "tiles" });
  const charts = h("div", { class: "charts" });
  const info = h("p", { class: "muted" }, "Waiting for messages…");
  const el = h(
    "div",
    { class: "channel-card", "data-channel": name },
    h(
      "h3",
      {},
      name,
      h("button", { type: "button", class: "link danger", "aria-label": `Remove ${name}`, onclick: () => removeChannel(name) }, "Remove"),
    ),
    info,
    tiles,
    charts,
  );
  const fields = new Map(); // path → {tile, chart}
  const onMessage = (m) => {
    if (m.data == null || m.retracted) return;
    const nums = {};
    const texts = [];
    flatten(m.data, "", nums, texts);
    info.textContent = `Last: ${m.event || "message"} at ${clock(m.ts ?? new Date())}${texts.length ? " · " + texts.slice(0, 4).join(" · ") : ""}`;
    for (const [path, x] of Object.entries(nums)) {
      let f = fields.get(path);
      if (!f) {
        if (fields.size >= 24) continue;
        const value = h("div", { class: "value" });
        const tile = h("div", { class: "tile", "data-field": path }, h("div", { class: "label" }, path), value);
        const chart = new LineChart(path, [{ key: "v", label: path, color: colorOf(path) }], { points: WINDOW, unit: "messages" });
        f = { tile, value, chart };
        fields.set(path, f);
        tiles.append(tile);
        charts.append(chart.el);
      }
      f.value.textContent = fmt(x);
      f.tile.dataset.value = String(x);
      f.chart.push({ v: x });
    }
  };
  let sub;
  try {
    sub = state.client.subscribe(name, onMessage, { since: { offset: 0, epoch: "" } });
  } catch (err) {
    errorEl.textContent = explain(err, name);
    return;
  }
  sub.on("error", (err) => (info.textContent = explain(err, name)));
  state.channels.set(name, { sub, el });
  state.chanList.append(el);
  save(CHANNELS_KEY, { list: [...state.channels.keys()] });
}

function removeChannel(name) {
  const c = state.channels.get(name);
  if (!c) return;
  c.sub.unsubscribe();
  c.el.remove();
  state.channels.delete(name);
  save(CHANNELS_KEY, { list: [...state.channels.keys()] });
}

// flatten collects the numbers of a message by path ("a.b", "list.0") and
// a few short strings.
function flatten(v, path, nums, texts) {
  if (typeof v === "number" && Number.isFinite(v)) nums[path || "value"] = v;
  else if (typeof v === "string") {
    if (texts.length < 8) texts.push(path ? `${path}: ${v.slice(0, 60)}` : v.slice(0, 60));
  } else if (typeof v === "boolean") nums[path || "value"] = v ? 1 : 0;
  else if (Array.isArray(v)) v.slice(0, 20).forEach((x, i) => flatten(x, path ? `${path}.${i}` : String(i), nums, texts));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) flatten(x, path ? `${path}.${k}` : k, nums, texts);
}

boot();
