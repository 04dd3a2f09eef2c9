// grid.js: a virtualized results grid. Only the rows in view (plus a margin)
// are in the DOM, so 10,000 or 500,000 rows scroll without freezing the page.
// Columns sort on click (stable; nulls last), resize by dragging the header's
// edge, dynamic values expand on click or Enter, and rows copy with Ctrl+C.
import { el, clear } from "./dom.js";

const ROW = 26;
const OVERSCAN = 10;

export function formatCell(v, type) {
  if (v === null || v === undefined) return "";
  if (type === "dynamic" && typeof v !== "string") return JSON.stringify(v);
  return String(v);
}

export class Grid {
  constructor(container, { columns, rows }) {
    this.columns = columns;
    this.rows = rows;
    this.view = rows.map((_, i) => i);
    this.widths = columns.map((c) => Math.min(360, Math.max(80, 9 * Math.max(c.name.length + 2, 8))));
    this.sort = { col: -1, dir: 1 };
    this.detail = el("div", { class: "detail", hidden: true, role: "region", "aria-label": "Cell value", tabindex: "0" });
    this.head = el("div", { class: "head", role: "row" });
    this.spacer = el("div", { style: "height:0px" });
    this.body = el("div", { class: "body", tabindex: "0", role: "rowgroup", "aria-label": `${rows.length} result rows` }, this.spacer);
    this.root = el("div", { class: "grid", role: "grid", "aria-rowcount": rows.length + 1, "aria-colcount": columns.length },
      this.head, this.body);
    container.append(this.root, this.detail);
    this.body.addEventListener("scroll", () => {
      this.head.scrollLeft = this.body.scrollLeft;
      this.renderRows();
    });
    this.body.addEventListener("keydown", (e) => this.onKey(e));
    this.renderHead();
    this.renderRows();
  }

  totalWidth() { return this.widths.reduce((a, b) => a + b, 0); }

  renderHead() {
    clear(this.head);
    this.columns.forEach((c, i) => {
      const arrow = this.sort.col === i ? (this.sort.dir > 0 ? " ▲" : " ▼") : "";
      const cell = el("div", {
        class: "cell", role: "columnheader", tabindex: "0", style: `width:${this.widths[i]}px`,
        title: `${c.name} (${c.type})`,
        "aria-sort": this.sort.col === i ? (this.sort.dir > 0 ? "ascending" : "descending") : "none",
        onclick: (e) => { if (!e.target.classList.contains("resize")) this.sortBy(i); },
        onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); this.sortBy(i); } },
      }, c.name + arrow, el("span", { class: "resize", "aria-hidden": "true" }));
      cell.querySelector(".resize").addEventListener("pointerdown", (e) => this.startResize(e, i));
      this.head.append(cell);
    });
  }

  startResize(e, i) {
    e.preventDefault();
    const x0 = e.clientX, w0 = this.widths[i];
    const move = (ev) => {
      this.widths[i] = Math.max(40, w0 + ev.clientX - x0);
      this.renderHead();
      this.renderRows(true);
    };
    const up = () => { window.removeEventListener("pointermove", move); window.removeEventListener("pointerup", up); };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  }

  sortBy(i) {
    this.sort = { col: i, dir: this.sort.col === i ? -this.sort.dir : 1 };
    const dir = this.sort.dir;
    const num = ["int", "long", "real", "decimal"].includes(this.columns[i].type);
    const key = (r) => this.rows[r][i];
    this.view.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === null || x === undefined) return (y === null || y === undefined) ? a - b : 1;
      if (y === null || y === undefined) return -1;
      let c;
      if (num) c = Number(x) - Number(y);
      else c = formatCell(x, this.columns[i].type).localeCompare(formatCell(y, this.columns[i].type));
      return c * dir || a - b;
    });
    this.renderHead();
    this.renderRows(true);
  }

  renderRows(force) {
    const top = this.body.scrollTop;
    const height = this.body.clientHeight || 380;
    const first = Math.max(0, Math.floor(top / ROW) - OVERSCAN);
    const last = Math.min(this.view.length, Math.ceil((top + height) / ROW) + OVERSCAN);
    if (!force && this.range && this.range[0] === first && this.range[1] === last) return;
    this.range = [first, last];
    this.spacer.style.height = `${this.view.length * ROW}px`;
    this.spacer.style.width = `${this.totalWidth()}px`;
    for (const n of [...this.body.querySelectorAll(".row")]) n.remove();
    for (let v = first; v < last; v++) {
      const r = this.rows[this.view[v]];
      const row = el("div", { class: "row", role: "row", tabindex: "-1", "aria-rowindex": v + 2, style: `top:${v * ROW}px;width:${this.totalWidth()}px`, dataset: { v } });
      this.columns.forEach((c, i) => {
        const text = formatCell(r[i], c.type);
        const dyn = c.type === "dynamic" && text.length > 0;
        row.append(el("div", {
          class: dyn ? "cell dyn" : "cell", role: "gridcell", style: `width:${this.widths[i]}px`, title: text.length > 200 ? text.slice(0, 200) + "…" : text,
          onclick: dyn ? () => this.expand(c, r[i]) : null,
        }, text.length > 500 ? text.slice(0, 500) + "…" : text));
      });
      this.body.append(row);
    }
  }

  expand(col, value) {
    let pretty = value;
    try { pretty = JSON.stringify(typeof value === "string" ? JSON.parse(value) : value, null, 2); } catch { /* not JSON */ }
    this.detail.hidden = false;
    clear(this.detail);
    this.detail.append(el("strong", {}, col.name), "\n", pretty);
    this.detail.focus();
  }

  onKey(e) {
    const cur = document.activeElement && document.activeElement.dataset ? Number(document.activeElement.dataset.v) : NaN;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      const next = Number.isNaN(cur) ? 0 : Math.max(0, Math.min(this.view.length - 1, cur + (e.key === "ArrowDown" ? 1 : -1)));
      this.body.scrollTop = Math.max(0, Math.min(this.body.scrollTop, next * ROW), (next + 1) * ROW - this.body.clientHeight);
      this.renderRows();
      const n = this.body.querySelector(`.row[data-v="${next}"]`);
      if (n) n.focus();
    } else if (e.key === "Enter" && !Number.isNaN(cur)) {
      const r = this.rows[this.view[cur]];
      const i = this.columns.findIndex((c) => c.type === "dynamic");
      if (i >= 0) this.expand(this.columns[i], r[i]);
    } else if ((e.ctrlKey || e.metaKey) && e.key === "c" && !Number.isNaN(cur)) {
      const r = this.rows[this.view[cur]];
      navigator.clipboard && navigator.clipboard.writeText(r.map((x, i) => formatCell(x, this.columns[i].type)).join("\t"));
    }
  }

  // orderedRows returns the rows in the grid's current order.
  orderedRows() { return this.view.map((i) => this.rows[i]); }
}

export function toCSV(columns, rows) {
  const q = (s) => /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  const lines = [columns.map((c) => q(c.name)).join(",")];
  for (const r of rows) lines.push(r.map((x, i) => q(formatCell(x, columns[i].type))).join(","));
  return lines.join("\r\n") + "\r\n";
}

export function toJSON(columns, rows) {
  return JSON.stringify(rows.map((r) => Object.fromEntries(columns.map((c, i) => [c.name, r[i]]))), null, 2);
}
