// chart.js: draws render timechart, linechart, areachart, barchart,
// columnchart and piechart results as SVG, following Kusto's column rules:
// the x axis is the first datetime (timechart) or first column; numeric
// columns are series; a string column splits series.
import { el, svg } from "./dom.js";

const PALETTE = ["#0f6cbd", "#ca5010", "#107c10", "#8764b8", "#a4262c", "#038387", "#8a5300", "#e3008c", "#545454", "#4f6bed"];
const NUM = new Set(["int", "long", "real", "decimal"]);

export const chartKinds = new Set(["timechart", "linechart", "areachart", "barchart", "columnchart", "piechart", "scatterchart"]);

// seriesOf turns a result table into {x: values, series: [{name, points: [[x, y]]}]}.
export function seriesOf(columns, rows, render = {}) {
  const kind = render.visualization;
  let xi = -1;
  if (render.xcolumn) xi = columns.findIndex((c) => c.name === render.xcolumn);
  if (xi < 0 && kind === "timechart") xi = columns.findIndex((c) => c.type === "datetime");
  if (xi < 0) xi = 0;
  let ys = render.ycolumns ? render.ycolumns.map((n) => columns.findIndex((c) => c.name === n)).filter((i) => i >= 0) : [];
  if (ys.length === 0) ys = columns.map((c, i) => (i !== xi && NUM.has(c.type) ? i : -1)).filter((i) => i >= 0);
  const splitIdx = columns.findIndex((c, i) => i !== xi && !ys.includes(i) && c.type === "string");
  const map = new Map();
  for (const r of rows) {
    for (const y of ys) {
      const name = (splitIdx >= 0 ? String(r[splitIdx] ?? "") + (ys.length > 1 ? ":" : "") : "") + (ys.length > 1 || splitIdx < 0 ? columns[y].name : "");
      if (!map.has(name)) map.set(name, []);
      const v = r[y] === null ? null : Number(r[y]);
      map.get(name).push([r[xi], v]);
    }
  }
  const xType = columns[xi] ? columns[xi].type : "string";
  return { xName: columns[xi] ? columns[xi].name : "", xType, series: [...map].slice(0, 50).map(([name, points]) => ({ name, points })) };
}

function xValue(x, xType) {
  if (xType === "datetime") return Date.parse(x);
  if (NUM.has(xType)) return Number(x);
  return x;
}

function fmtNum(n) {
  if (!isFinite(n)) return "";
  const a = Math.abs(n);
  if (a >= 1e9) return (n / 1e9).toFixed(1) + "G";
  if (a >= 1e6) return (n / 1e6).toFixed(1) + "M";
  if (a >= 1e3) return (n / 1e3).toFixed(1) + "k";
  return Number.isInteger(n) ? String(n) : n.toFixed(2);
}

// drawChart renders the chart into container and returns the SVG element.
export function drawChart(container, columns, rows, render) {
  const kind = render.visualization;
  const data = seriesOf(columns, rows, render);
  const W = 900, H = 320, L = 56, B = 40, T = 16, R = 16;
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${kind} of ${data.series.map((s) => s.name).join(", ")}` });
  const legend = el("div", { class: "legend" }, data.series.map((s, i) => el("span", {}, el("i", { style: `background:${PALETTE[i % PALETTE.length]}` }), s.name)));
  container.append(el("div", { class: "chart" }, render.title ? el("h2", {}, render.title) : null, root, legend));
  if (data.series.length === 0) {
    root.append(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "No numeric column to chart."));
    return root;
  }
  if (kind === "piechart") {
    const s = data.series[0];
    const total = s.points.reduce((a, p) => a + (p[1] > 0 ? p[1] : 0), 0) || 1;
    let angle = -Math.PI / 2;
    const cx = W / 2, cy = H / 2, r = Math.min(W, H) / 2 - 20;
    s.points.forEach((p, i) => {
      const v = p[1] > 0 ? p[1] : 0;
      const a2 = angle + (v / total) * 2 * Math.PI;
      const large = a2 - angle > Math.PI ? 1 : 0;
      const d = `M${cx},${cy} L${cx + r * Math.cos(angle)},${cy + r * Math.sin(angle)} A${r},${r} 0 ${large} 1 ${cx + r * Math.cos(a2)},${cy + r * Math.sin(a2)} Z`;
      root.append(svg("path", { d, fill: PALETTE[i % PALETTE.length] }, svg("title", {}, `${p[0]}: ${fmtNum(v)} (${(100 * v / total).toFixed(1)}%)`)));
      angle = a2;
    });
    legend.replaceChildren(...s.points.map((p, i) => el("span", {}, el("i", { style: `background:${PALETTE[i % PALETTE.length]}` }), String(p[0]))));
    return root;
  }
  const all = data.series.flatMap((s) => s.points);
  const ysv = all.map((p) => p[1]).filter((v) => v !== null && isFinite(v));
  const yMax = Math.max(0, ...ysv), yMin = Math.min(0, ...ysv);
  const ySpan = yMax - yMin || 1;
  const yPix = (v) => T + (H - T - B) * (1 - (v - yMin) / ySpan);
  // Axes and grid lines.
  for (let k = 0; k <= 4; k++) {
    const v = yMin + (ySpan * k) / 4, y = yPix(v);
    root.append(svg("line", { x1: L, x2: W - R, y1: y, y2: y, stroke: "#edebe9" }));
    root.append(svg("text", { x: L - 6, y: y + 4, "text-anchor": "end", fill: "#545454" }, fmtNum(v)));
  }
  const categorical = !(data.xType === "datetime" || NUM.has(data.xType)) || kind === "barchart" || kind === "columnchart";
  if (categorical) {
    const cats = [...new Set(all.map((p) => String(p[0])))].slice(0, 200);
    const band = (W - L - R) / Math.max(cats.length, 1);
    const bw = Math.max(1, (band * 0.8) / data.series.length);
    data.series.forEach((s, si) => {
      for (const [x, y] of s.points) {
        if (y === null) continue;
        const ci = cats.indexOf(String(x));
        if (ci < 0) continue;
        const x0 = L + ci * band + band * 0.1 + si * bw;
        const y0 = yPix(Math.max(y, 0)), y1 = yPix(Math.min(y, 0));
        root.append(svg("rect", { x: x0, y: y0, width: bw, height: Math.max(1, y1 - y0), fill: PALETTE[si % PALETTE.length] },
          svg("title", {}, `${s.name} ${x}: ${fmtNum(y)}`)));
      }
    });
    const every = Math.ceil(cats.length / 12);
    cats.forEach((c, i) => {
      if (i % every === 0) root.append(svg("text", { x: L + i * band + band / 2, y: H - B + 14, "text-anchor": "middle", fill: "#545454" }, c.length > 14 ? c.slice(0, 13) + "…" : c));
    });
    return root;
  }
  const xs = all.map((p) => xValue(p[0], data.xType)).filter((v) => isFinite(v));
  const xMin = Math.min(...xs), xMax = Math.max(...xs), xSpan = xMax - xMin || 1;
  const xPix = (v) => L + (W - L - R) * ((v - xMin) / xSpan);
  data.series.forEach((s, si) => {
    const pts = s.points.filter((p) => p[1] !== null).map((p) => [xValue(p[0], data.xType), p[1]]).sort((a, b) => a[0] - b[0]);
    if (pts.length === 0) return;
    const d = pts.map((p, i) => `${i ? "L" : "M"}${xPix(p[0]).toFixed(1)},${yPix(p[1]).toFixed(1)}`).join(" ");
    if (kind === "areachart") {
      root.append(svg("path", { d: `${d} L${xPix(pts[pts.length - 1][0])},${yPix(0)} L${xPix(pts[0][0])},${yPix(0)} Z`, fill: PALETTE[si % PALETTE.length], opacity: 0.35 }));
    }
    if (kind === "scatterchart") {
      for (const p of pts) root.append(svg("circle", { cx: xPix(p[0]), cy: yPix(p[1]), r: 2.5, fill: PALETTE[si % PALETTE.length] }));
    } else {
      root.append(svg("path", { d, fill: "none", stroke: PALETTE[si % PALETTE.length], "stroke-width": 1.6 }, svg("title", {}, s.name)));
    }
  });
  for (let k = 0; k <= 5; k++) {
    const v = xMin + (xSpan * k) / 5;
    const label = data.xType === "datetime" ? new Date(v).toISOString().replace("T", " ").slice(5, 16) : fmtNum(v);
    root.append(svg("text", { x: xPix(v), y: H - B + 14, "text-anchor": "middle", fill: "#545454" }, label));
  }
  return root;
}
