// chart.js: a small live line chart in SVG (no library). Values scale from
// zero to a little above the window's peak; the newest point is at the
// right edge.

import { h } from "./util.js";

const SVG = "http://www.w3.org/2000/svg";
const W = 300;
const H = 90;

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

/** fmt formats a number for tiles and charts: 1234 → "1,234", 0.5 → "0.5". */
export function fmt(v, digits = 1) {
  if (v == null || Number.isNaN(v)) return "–";
  const abs = Math.abs(v);
  const d = abs >= 100 || Number.isInteger(v) ? 0 : digits;
  return v.toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: 0 });
}

export class LineChart {
  /**
   * @param title shown above the chart
   * @param series [{key, label, color}]
   * @param options.points how many points the window holds (default 60)
   * @param options.format formats a value (default fmt)
   * @param options.unit what one point is, for the axis ("s": one a second)
   * @param options.id element id
   */
  constructor(title, series, { points = 60, format = fmt, unit = "points", id } = {}) {
    this.title = title;
    this.series = series.map((s) => ({ ...s, values: [] }));
    this.points = points;
    this.format = format;
    this.unit = unit;
    this.since = h("span", {});
    this.now = h("span", { class: "now" });
    this.peak = h("span", {});
    this.svg = svg("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "aria-hidden": "true" });
    this.svg.append(svg("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, stroke: "#dfe3e8", "vector-effect": "non-scaling-stroke" }));
    for (const s of this.series) {
      s.area = svg("polygon", { fill: s.color, "fill-opacity": "0.12", stroke: "none" });
      s.line = svg("polyline", { fill: "none", stroke: s.color, "stroke-width": "2", "vector-effect": "non-scaling-stroke", "stroke-linejoin": "round" });
      this.svg.append(s.area, s.line);
    }
    const legend =
      this.series.length > 1
        ? h("div", { class: "axis" }, ...this.series.map((s) => h("span", {}, h("span", { class: "dot", style: { background: s.color } }), s.label)))
        : null;
    this.el = h(
      "figure",
      { class: "chart", id, role: "img", "aria-label": title, style: { margin: 0 } },
      h("div", { class: "chart-head" }, h("figcaption", {}, title), this.now),
      this.svg,
      h("div", { class: "axis" }, this.since, this.peak, h("span", {}, "now")),
      legend,
    );
  }

  /** push adds one point: values by series key (missing: 0). */
  push(values) {
    for (const s of this.series) {
      s.values.push(Number(values[s.key]) || 0);
      if (s.values.length > this.points) s.values.splice(0, s.values.length - this.points);
    }
    this.render();
  }

  render() {
    let peak = 0;
    for (const s of this.series) for (const v of s.values) peak = Math.max(peak, v);
    const top = peak > 0 ? peak * 1.15 : 1;
    // The window grows with the data up to its size, so that a young chart
    // is not a sliver at the right edge.
    const n = Math.max(...this.series.map((s) => s.values.length), 0);
    const span = Math.min(this.points, Math.max(n, 20));
    const step = W / Math.max(1, span - 1);
    this.since.textContent = this.unit === "s" ? `${span} s ago` : `${span} ${this.unit} ago`;
    for (const s of this.series) {
      const n = s.values.length;
      const x0 = W - (n - 1) * step;
      const pts = s.values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(H - (v / top) * (H - 4)).toFixed(1)}`);
      s.line.setAttribute("points", pts.join(" "));
      s.area.setAttribute("points", n ? `${x0.toFixed(1)},${H} ${pts.join(" ")} ${W},${H}` : "");
    }
    const latest = this.series.map((s) => s.values[s.values.length - 1]);
    this.now.textContent = this.series.length > 1 ? latest.map((v, i) => `${this.series[i].label} ${this.format(v)}`).join(" · ") : this.format(latest[0]);
    this.peak.textContent = `peak ${this.format(peak)}`;
    this.el.setAttribute("aria-label", `${this.title}: now ${this.now.textContent}, peak ${this.format(peak)}`);
  }
}

/** sparkline returns a tiny SVG line of values (0..peak). */
export function sparkline(values, color = "#2563eb") {
  const el = svg("svg", { class: "spark", viewBox: "0 0 100 22", preserveAspectRatio: "none", "aria-hidden": "true" });
  const peak = Math.max(1, ...values);
  const step = 100 / Math.max(1, values.length - 1);
  const pts = values.map((v, i) => `${(i * step).toFixed(1)},${(21 - (v / peak) * 19).toFixed(1)}`).join(" ");
  el.append(svg("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": "1.5", "vector-effect": "non-scaling-stroke" }));
  return el;
}
