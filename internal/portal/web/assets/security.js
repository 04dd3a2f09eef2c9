// security.js: which key protects each workspace and its state, and the
// workspaces' public network access settings.
import { listAll, v } from "./api.js";
import { el, table, errorText } from "./dom.js";
import { subscriptionOf } from "./resources.js";

export async function mount(main, state) {
  main.append(el("h1", {}, "Encryption and network"));
  if (!state.workspace) { main.append(el("p", { class: "muted" }, "No workspace is visible to you.")); return; }
  const sub = subscriptionOf(state);
  let clusters = [];
  try { clusters = await listAll(v(`/subscriptions/${sub}/providers/Microsoft.OperationalInsights/clusters`, "2022-10-01")); }
  catch { /* reading clusters needs its own permission */ }
  const clusterOf = (ws) => clusters.find((c) => (c.properties.associatedWorkspaces || []).some((a) => (a.resourceId || "").toLowerCase() === ws.id.toLowerCase()));
  const keyCell = (ws) => {
    const c = clusterOf(ws);
    if (!c) return "Platform-managed key";
    const kv = c.properties.keyVaultProperties || {};
    return `Customer-managed key ${kv.keyName || ""}${kv.keyVersion ? "/" + kv.keyVersion : ""} (cluster ${c.name})${c.properties.isDoubleEncryptionEnabled ? ", double encryption" : ""}`;
  };
  const stateCell = (ws) => {
    const c = clusterOf(ws);
    const s = (ws.properties.encryption && ws.properties.encryption.state) || (c && c.properties.provisioningState) || "Healthy";
    const bad = /revoked|unavailable|failed/i.test(s);
    return el("span", { class: bad ? "badge err" : "badge ok" }, s);
  };
  main.append(el("h2", {}, "Workspaces"), table([
    { title: "Workspace", render: (w) => w.name },
    { title: "Key", render: keyCell },
    { title: "Key state", render: stateCell },
    { title: "Public ingestion", render: (w) => w.properties.publicNetworkAccessForIngestion || "Enabled" },
    { title: "Public query", render: (w) => w.properties.publicNetworkAccessForQuery || "Enabled" },
  ], state.workspaces));
  try {
    const scopes = await listAll(v(`/subscriptions/${sub}/providers/Microsoft.Insights/privateLinkScopes`, "2021-07-01-preview"));
    main.append(el("h2", {}, "Private link scopes"), table([
      { title: "Name", render: (s) => s.name },
      { title: "Ingestion access", render: (s) => (s.properties.accessModeSettings || {}).ingestionAccessMode || "" },
      { title: "Query access", render: (s) => (s.properties.accessModeSettings || {}).queryAccessMode || "" },
    ], scopes));
  } catch (err) { main.append(el("p", { class: "muted" }, `Private link scopes: ${errorText(err)}`)); }
}
