// logs.js: the Logs blade — KQL editor, time range, results grid, charts,
// history and saved queries, against the Log Analytics Query API.
import { logs, arm, listAll, v } from "./api.js";
import { el, clear, download, errorText } from "./dom.js";
import { offsetOf } from "./kql.js";
import { kqlEditor } from "./editor.js";
import { Grid, toCSV, toJSON } from "./grid.js";
import { drawChart, chartKinds } from "./chart.js";

const RANGES = [
  ["PT30M", "Last 30 minutes"], ["PT1H", "Last hour"], ["PT4H", "Last 4 hours"], ["PT12H", "Last 12 hours"],
  ["P1D", "Last 24 hours"], ["P2D", "Last 48 hours"], ["P7D", "Last 7 days"], ["P30D", "Last 30 days"], ["", "Set in query"],
];
const HISTORY_KEY = "custos.history";
const HISTORY_MAX = 50;

let controller = null;

export function unmount() {
  if (controller) controller.abort();
}

function history() {
  try { return JSON.parse(sessionStorage.getItem(HISTORY_KEY) || "[]"); } catch { return []; }
}
function remember(q) {
  const h = history().filter((x) => x !== q);
  h.unshift(q);
  sessionStorage.setItem(HISTORY_KEY, JSON.stringify(h.slice(0, HISTORY_MAX)));
}

export async function mount(main, state) {
  main.append(el("h1", {}, "Logs"));
  if (!state.workspace) {
    main.append(el("p", { class: "muted" }, "No workspace is visible to you. Ask an owner for access."));
    return;
  }
  const ws = state.workspace;
  const customerId = ws.properties && ws.properties.customerId;

  const ed = kqlEditor({ id: "kql", label: "KQL query", value: sessionStorage.getItem("custos.query") || "search *\n| summarize count() by $table\n| render columnchart", onRun: () => execute() });
  const textarea = ed.textarea, editor = ed.root;
  const range = el("select", { id: "timerange", "aria-label": "Time range" }, RANGES.map(([val, label]) => el("option", { value: val }, label)));
  range.value = "P1D";
  const run = el("button", { type: "button", class: "primary", id: "run", title: "Run (Shift+Enter)" }, "Run");
  const cancel = el("button", { type: "button", class: "secondary", id: "cancel", disabled: true }, "Cancel");
  const hist = el("select", { id: "history", "aria-label": "Query history" });
  const saved = el("select", { id: "saved", "aria-label": "Saved queries" });
  const save = el("button", { type: "button", class: "secondary", id: "save" }, "Save");
  const exportCSV = el("button", { type: "button", class: "secondary", disabled: true }, "Export CSV");
  const exportJSON = el("button", { type: "button", class: "secondary", disabled: true }, "Export JSON");
  const status = el("div", { class: "status", id: "status", role: "status", "aria-live": "polite" });
  const tabs = el("div", { class: "tabs", role: "tablist" });
  const out = el("div", { id: "results" });
  main.append(
    el("div", { class: "toolbar" }, run, cancel, el("label", {}, "Time range ", range), hist, saved, save, exportCSV, exportJSON),
    editor, status, tabs, out);

  ed.loadSchema(customerId);

  // History and saved searches.
  const fillHistory = () => {
    clear(hist);
    hist.append(el("option", { value: "" }, "History"));
    for (const q of history()) hist.append(el("option", { value: q }, q.length > 60 ? q.slice(0, 60) + "…" : q));
  };
  fillHistory();
  hist.onchange = () => { if (hist.value) { ed.value = hist.value; textarea.focus(); } };
  const savedPath = v(`${ws.id}/savedSearches`, "2020-08-01");
  const fillSaved = async () => {
    clear(saved);
    saved.append(el("option", { value: "" }, "Saved queries"));
    try {
      for (const s of await listAll(savedPath)) {
        saved.append(el("option", { value: s.properties.query }, `${s.properties.category ? s.properties.category + " / " : ""}${s.properties.displayName}${s.properties.functionAlias ? " (" + s.properties.functionAlias + ")" : ""}`));
      }
    } catch { saved.disabled = true; }
  };
  fillSaved();
  saved.onchange = () => { if (saved.value) { ed.value = saved.value; } };
  save.onclick = async () => {
    const name = prompt("Name of the saved query:");
    if (!name) return;
    const id = name.toLowerCase().replace(/[^a-z0-9_-]+/g, "-").slice(0, 60) || "query";
    try {
      await arm.put(v(`${ws.id}/savedSearches/${id}`, "2020-08-01"), { properties: { category: "Saved", displayName: name, query: textarea.value } });
      status.textContent = `Saved "${name}".`;
      fillSaved();
    } catch (err) { status.textContent = errorText(err); }
  };

  // Running a query.
  const execute = async () => {
    const query = textarea.value;
    sessionStorage.setItem("custos.query", query);
    remember(query);
    fillHistory();
    ed.closePopup();
    if (controller) controller.abort();
    controller = new AbortController();
    run.disabled = true; cancel.disabled = false;
    clear(status); clear(out); clear(tabs);
    const started = performance.now();
    const spin = el("span", { class: "spinner", "aria-hidden": "true" });
    const elapsed = el("span", {}, "Running…");
    status.append(spin, elapsed);
    const timer = setInterval(() => { elapsed.textContent = `Running… ${((performance.now() - started) / 1000).toFixed(1)} s`; }, 200);
    try {
      const body = { query };
      if (range.value) body.timespan = range.value;
      const resp = await logs.query(customerId, body, {
        signal: controller.signal,
        headers: { "Prefer": "wait=600, include-statistics=true, include-render=true", "x-ms-app": "custos-portal" },
      });
      ed.setError(-1);
      show(resp, (performance.now() - started) / 1000);
    } catch (err) {
      clear(status);
      if (err.name === "AbortError") { status.append(el("span", {}, "Query cancelled.")); return; }
      const inner = err.body && err.body.error && (err.body.error.innererror || err.body.error);
      const line = inner && (inner.line || (inner.innererror && inner.innererror.line));
      const pos = inner && (inner.pos || (inner.innererror && inner.innererror.pos));
      const detail = inner && inner.innererror && inner.innererror.message ? inner.innererror.message : (inner && inner.message);
      if (line && pos) ed.setError(offsetOf(query, line, pos));
      status.append(el("span", { class: "error", role: "alert", id: "query-error" },
        `${errorText(err)}${detail && detail !== err.message ? " — " + detail : ""}${line ? ` (line ${line}, column ${pos})` : ""}`));
    } finally {
      clearInterval(timer);
      run.disabled = false; cancel.disabled = true;
      controller = null;
    }
  };
  run.onclick = execute;
  cancel.onclick = () => { if (controller) controller.abort(); };

  const show = (resp, secs) => {
    const t = (resp.tables || [])[0] || { columns: [], rows: [] };
    clear(status);
    const stats = resp.statistics && resp.statistics.query;
    const cpu = stats && stats.resourceUsage && stats.resourceUsage.cpu ? ` · CPU ${stats.resourceUsage.cpu["total cpu"] || ""}` : "";
    status.append(el("span", { class: "ok", id: "row-count" }, `${t.rows.length.toLocaleString()} rows`), el("span", {}, `${secs.toFixed(2)} s${cpu}`));
    if (resp.error) status.append(el("span", { class: "error" }, errorText(resp.error)));
    exportCSV.disabled = exportJSON.disabled = false;
    let grid = null;
    const resultsPane = el("div", { role: "tabpanel", id: "tab-results" });
    const chartPane = el("div", { role: "tabpanel", id: "tab-chart", hidden: true });
    const render = resp.render && chartKinds.has(resp.render.visualization) ? resp.render : null;
    const tabResults = el("button", { type: "button", role: "tab", "aria-selected": String(!render), "aria-controls": "tab-results" }, "Results");
    const tabChart = el("button", { type: "button", role: "tab", "aria-selected": String(!!render), "aria-controls": "tab-chart", disabled: !render }, "Chart");
    const select = (chart) => {
      tabResults.setAttribute("aria-selected", String(!chart)); tabChart.setAttribute("aria-selected", String(chart));
      resultsPane.hidden = chart; chartPane.hidden = !chart;
      if (!chart && !grid) grid = new Grid(resultsPane, t);
    };
    tabResults.onclick = () => select(false);
    tabChart.onclick = () => select(true);
    tabs.append(tabResults, tabChart);
    out.append(resultsPane, chartPane);
    if (render) drawChart(chartPane, t.columns, t.rows, render);
    select(!!render);
    exportCSV.onclick = () => download("query.csv", "text/csv", toCSV(t.columns, grid ? grid.orderedRows() : t.rows));
    exportJSON.onclick = () => download("query.json", "application/json", toJSON(t.columns, grid ? grid.orderedRows() : t.rows));
  };

  textarea.focus();
}
