// collection.js: data collection rules, their associations, and the agents
// (machines and clusters) with health from their last heartbeat.
import { logs, listAll, v } from "./api.js";
import { el, table, errorText } from "./dom.js";
import { listUnder, jsonEditor } from "./resources.js";

export async function mount(main, state) {
  main.append(el("h1", {}, "Data collection"));
  if (!state.workspace) { main.append(el("p", { class: "muted" }, "No subscription is visible to you.")); return; }
  const editor = el("section", {});
  const dcrBox = el("section", {}, el("h2", {}, "Data collection rules"));
  const agentBox = el("section", {}, el("h2", {}, "Agents"));
  main.append(dcrBox, agentBox, editor);
  try {
    const dcrs = await listUnder(state, "Microsoft.Insights/dataCollectionRules", "2022-06-01");
    dcrBox.append(table([
      { title: "Name", render: (d) => el("button", { type: "button", class: "link", onclick: () => jsonEditor(editor, { title: `Edit ${d.name}`, path: d.id, version: "2022-06-01", body: { location: d.location, tags: d.tags, kind: d.kind, properties: d.properties } }) }, d.name) },
      { title: "Immutable ID", render: (d) => d.properties.immutableId },
      { title: "Streams", render: (d) => (d.properties.dataFlows || []).flatMap((f) => f.streams).join(", ") },
      { title: "Destinations", render: (d) => (d.properties.dataFlows || []).flatMap((f) => f.destinations).join(", ") },
      { title: "Transformation", render: (d) => (d.properties.dataFlows || []).some((f) => f.transformKql && f.transformKql !== "source") ? "yes" : "" },
    ], dcrs));
  } catch (err) { dcrBox.append(el("p", { class: "error" }, errorText(err))); }

  // Health from the Heartbeat table: last heartbeat per agent resource.
  const beats = new Map();
  try {
    const r = await logs.query(state.workspace.properties.customerId, { query: "Heartbeat | summarize LastHeartbeat = max(TimeGenerated) by _ResourceId", timespan: "P2D" });
    for (const [last, id] of (r.tables[0] || { rows: [] }).rows.map((x) => [x[1], x[0]])) beats.set(String(id).toLowerCase(), last);
  } catch { /* health needs data access */ }
  const health = (id) => {
    const last = beats.get(id.toLowerCase());
    if (!last) return el("span", { class: "badge" }, "no heartbeat");
    const age = (Date.now() - Date.parse(last)) / 1000;
    return el("span", { class: age < 300 ? "badge ok" : "badge err" }, `${age < 300 ? "healthy" : "silent"} · ${last}`);
  };
  try {
    const machines = await listUnder(state, "Microsoft.HybridCompute/machines", "2024-07-10");
    const clusters = await listUnder(state, "Microsoft.Kubernetes/connectedClusters", "2024-01-01").catch(() => []);
    const rows = [...machines.map((m) => ({ kind: "Machine", r: m })), ...clusters.map((c) => ({ kind: "Kubernetes cluster", r: c }))];
    const assocCell = (x) => {
      const cell = el("span", { class: "muted" }, "…");
      listAll(v(`${x.r.id}/providers/Microsoft.Insights/dataCollectionRuleAssociations`, "2022-06-01"))
        .then((as) => { cell.textContent = as.map((a) => (a.properties.dataCollectionRuleId || "").split("/").pop()).join(", ") || "none"; })
        .catch(() => { cell.textContent = "—"; });
      return cell;
    };
    agentBox.append(table([
      { title: "Name", render: (x) => x.r.name },
      { title: "Kind", render: (x) => x.kind },
      { title: "Status", render: (x) => (x.r.properties && (x.r.properties.status || x.r.properties.connectivityStatus)) || "" },
      { title: "Health", render: (x) => health(x.r.id) },
      { title: "DCRs", render: assocCell },
    ], rows));
  } catch (err) { agentBox.append(el("p", { class: "error" }, errorText(err))); }
}
