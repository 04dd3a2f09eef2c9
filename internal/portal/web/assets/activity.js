// activity.js: the activity log (the AzureActivity table) with filters and
// details, and the tamper-evident chain's verification status.
import { arm, logs, v } from "./api.js";
import { el, clear, table, errorText } from "./dom.js";

// kqlString quotes s as a KQL string literal.
function kqlString(s) {
  return `"${s.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

export async function mount(main, state) {
  main.append(el("h1", {}, "Activity log"));
  const chain = el("p", { id: "chain-status", role: "status" }, "Checking the activity log chain…");
  main.append(chain);
  arm.get(v("/providers/Custos.Admin/activityLog/verification", "2026-11-01")).then((r) => {
    chain.className = r.intact ? "ok" : "error";
    chain.textContent = r.intact
      ? `Chain intact: ${Number(r.records).toLocaleString()} records, ${r.checkpoints} signed checkpoints verified.`
      : `Chain broken at record ${r.firstBadRecord}: ${r.message}`;
  }).catch((err) => { chain.className = "muted"; chain.textContent = `Chain status unavailable: ${errorText(err)}`; });
  if (!state.workspace) return;
  const range = el("select", { "aria-label": "Time range" }, [["PT1H", "Last hour"], ["P1D", "Last 24 hours"], ["P7D", "Last 7 days"], ["P30D", "Last 30 days"]].map(([x, l]) => el("option", { value: x }, l)));
  range.value = "P1D";
  const op = el("input", { type: "search", placeholder: "operation contains", "aria-label": "Operation filter" });
  const caller = el("input", { type: "search", placeholder: "caller", "aria-label": "Caller filter" });
  const status = el("select", { "aria-label": "Status filter" }, ["", "Succeeded", "Failed", "Started", "Accepted"].map((s) => el("option", { value: s }, s || "Any status")));
  const list = el("div", {}), detail = el("section", { "aria-live": "polite" });
  const form = el("form", { class: "inline", role: "search" }, el("label", {}, "Time range", range), el("label", {}, "Operation", op), el("label", {}, "Caller", caller), el("label", {}, "Status", status), el("button", { type: "submit", class: "primary" }, "Apply"));
  main.append(form, list, detail);
  const load = async () => {
    clear(list); clear(detail);
    let q = "AzureActivity";
    if (op.value) q += `\n| where OperationNameValue contains ${kqlString(op.value)} or OperationName contains ${kqlString(op.value)}`;
    if (caller.value) q += `\n| where Caller contains ${kqlString(caller.value)}`;
    if (status.value) q += `\n| where ActivityStatusValue =~ ${kqlString(status.value)}`;
    q += "\n| sort by TimeGenerated desc\n| take 500";
    try {
      const r = await logs.query(state.workspace.properties.customerId, { query: q, timespan: range.value });
      const t = r.tables[0];
      const idx = (n) => t.columns.findIndex((c) => c.name === n);
      const cols = ["TimeGenerated", "OperationNameValue", "ActivityStatusValue", "Caller", "_ResourceId", "CorrelationId"].map((n) => [n, idx(n)]).filter(([, i]) => i >= 0);
      list.append(table(cols.map(([n, i]) => ({ title: n, render: (row) => String(row[i] ?? "") }))
        .concat([{ title: "", render: (row) => el("button", { type: "button", class: "link", onclick: () => {
          clear(detail);
          detail.append(el("h2", {}, "Details"), el("pre", { class: "detail" }, JSON.stringify(Object.fromEntries(t.columns.map((c, i) => [c.name, row[i]])), null, 2)));
        } }, "Details") }]), t.rows));
    } catch (err) { list.append(el("p", { class: "error" }, errorText(err))); }
  };
  form.onsubmit = (e) => { e.preventDefault(); load(); };
  await load();
}
