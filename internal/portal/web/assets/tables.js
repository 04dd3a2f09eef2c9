// tables.js: the workspace's tables — schema, retention, plan, row counts.
import { arm, logs, listAll, v } from "./api.js";
import { el, clear, table, errorText } from "./dom.js";

export async function mount(main, state) {
  main.append(el("h1", {}, "Tables"));
  const ws = state.workspace;
  if (!ws) { main.append(el("p", { class: "muted" }, "No workspace is visible to you.")); return; }
  const status = el("p", { class: "muted", role: "status" }, "Loading tables…");
  const list = el("div", {});
  const detail = el("section", { "aria-live": "polite" });
  main.append(status, list, detail);
  let tables;
  try {
    tables = await listAll(v(`${ws.id}/tables`, "2022-10-01"));
  } catch (err) {
    status.textContent = errorText(err);
    status.className = "error";
    return;
  }
  const counts = new Map();
  try {
    const r = await logs.query(ws.properties.customerId, { query: "union withsource=TableName * | summarize Rows = count() by TableName" });
    for (const [name, n] of (r.tables[0] || { rows: [] }).rows) counts.set(name, n);
  } catch { /* counts need data access; the list does not */ }
  status.textContent = `${tables.length} tables`;
  tables.sort((a, b) => a.name.localeCompare(b.name));
  const show = (t) => {
    clear(detail);
    const cols = [...((t.properties.schema && t.properties.schema.standardColumns) || []), ...((t.properties.schema && t.properties.schema.columns) || [])];
    detail.append(el("h2", {}, t.name),
      table([{ title: "Column", key: "name" }, { title: "Type", key: "type" }, { title: "Description", render: (c) => c.description || "" }], cols));
  };
  list.append(table([
    { title: "Name", render: (t) => el("button", { type: "button", class: "link", onclick: () => show(t) }, t.name) },
    { title: "Plan", render: (t) => t.properties.plan || "Analytics" },
    { title: "Retention (days)", render: (t) => String(t.properties.retentionInDays ?? "") },
    { title: "Total retention (days)", render: (t) => String(t.properties.totalRetentionInDays ?? "") },
    { title: "Rows", render: (t) => counts.has(t.name) ? Number(counts.get(t.name)).toLocaleString() : "—" },
    { title: "Type", render: (t) => (t.properties.schema && t.properties.schema.tableType) || "" },
  ], tables));
}
