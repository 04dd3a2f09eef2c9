// alerts.js: fired alerts (state, severity, history), log search alert
// rules, action groups with a test notification.
import { arm, v } from "./api.js";
import { el, clear, table, errorText } from "./dom.js";
import { listUnder, jsonEditor, subscriptionOf, resourceGroupOf } from "./resources.js";

const ALERTS_V = "2019-05-05-preview";

export async function mount(main, state) {
  main.append(el("h1", {}, "Alerts"));
  if (!state.workspace) { main.append(el("p", { class: "muted" }, "No subscription is visible to you.")); return; }
  const sub = subscriptionOf(state), rg = resourceGroupOf(state);
  const tabs = el("div", { class: "tabs", role: "tablist" });
  const pane = el("div", { role: "tabpanel" });
  main.append(tabs, pane);
  const views = { "Fired alerts": fired, "Alert rules": rules, "Action groups": groups };
  const open = async (name) => {
    for (const b of tabs.children) b.setAttribute("aria-selected", String(b.textContent === name));
    clear(pane);
    try { await views[name](pane, state, sub, rg); } catch (err) { pane.append(el("p", { class: "error", role: "alert" }, errorText(err))); }
  };
  for (const name of Object.keys(views)) tabs.append(el("button", { type: "button", role: "tab", onclick: () => open(name) }, name));
  await open("Fired alerts");
}

// alertID is the alert's own id (the last segment of its resource id); an
// alert's name is its rule's name.
const alertID = (a) => a.id.split("/").pop();

async function fired(pane, state, sub) {
  const base = `/subscriptions/${sub}/providers/Microsoft.AlertsManagement/alerts`;
  const range = el("select", { "aria-label": "Time range" }, ["1h", "1d", "7d", "30d"].map((r) => el("option", { value: r }, r)));
  range.value = "1d";
  const list = el("div", {}), detail = el("section", { "aria-live": "polite" });
  const load = async () => {
    clear(list);
    const page = await arm.get(v(`${base}?timeRange=${range.value}`, ALERTS_V));
    const alerts = (page && page.value) || [];
    list.append(table([
      { title: "Severity", render: (a) => el("span", { class: `sev sev${(a.properties.essentials.severity || "Sev3").slice(3)}` }, a.properties.essentials.severity) },
      { title: "Name", render: (a) => el("button", { type: "button", class: "link", onclick: () => showAlert(a) }, a.name) },
      { title: "Monitor condition", render: (a) => a.properties.essentials.monitorCondition },
      { title: "User state", render: (a) => a.properties.essentials.alertState },
      { title: "Fired", render: (a) => a.properties.essentials.startDateTime },
      { title: "Target", render: (a) => (a.properties.essentials.targetResourceName || "") },
      { title: "Action", render: (a) => el("select", { "aria-label": `Change state of ${a.name}`, onchange: async (e) => {
        try { await arm.post(v(`${base}/${alertID(a)}/changestate?newState=${e.target.value}`, ALERTS_V), {}); await load(); }
        catch (err) { list.prepend(el("p", { class: "error", role: "alert" }, errorText(err))); }
      } }, ["", "New", "Acknowledged", "Closed"].map((s) => el("option", { value: s }, s || "Change state…"))) },
    ], alerts));
  };
  const showAlert = async (a) => {
    clear(detail);
    detail.append(el("h2", {}, a.name), el("pre", { class: "detail" }, JSON.stringify(a.properties, null, 2)));
    try {
      const h = await arm.get(v(`${base}/${alertID(a)}/history`, ALERTS_V));
      const items = (h && h.properties && h.properties.modifications) || [];
      detail.append(el("h2", {}, "History"), table([
        { title: "Time", key: "modifiedAt" }, { title: "Event", key: "modificationEvent" }, { title: "By", key: "modifiedBy" },
        { title: "From", key: "oldValue" }, { title: "To", key: "newValue" }, { title: "Comments", render: (m) => m.comments || "" },
      ], items.map((m) => m.properties || m)));
    } catch (err) { detail.append(el("p", { class: "error" }, errorText(err))); }
  };
  range.onchange = load;
  pane.append(el("div", { class: "toolbar" }, el("label", {}, "Time range ", range), el("button", { type: "button", class: "secondary", onclick: load }, "Refresh")), list, detail);
  await load();
}

async function rules(pane, state, sub, rg) {
  const version = "2023-12-01";
  const editor = el("section", {});
  const list = el("div", {});
  const ws = state.workspace;
  const template = {
    location: ws.location || "westeurope",
    properties: {
      displayName: "", severity: 3, enabled: true, scopes: [ws.id], evaluationFrequency: "PT5M", windowSize: "PT5M",
      criteria: { allOf: [{ query: "Heartbeat | summarize AggregatedValue = count() by Computer", timeAggregation: "Count", operator: "GreaterThan", threshold: 0, failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 } }] },
      autoMitigate: true, actions: { actionGroups: [] },
    },
    identity: { type: "SystemAssigned" },
  };
  const load = async () => {
    clear(list);
    const items = await listUnder(state, "Microsoft.Insights/scheduledQueryRules", version);
    list.append(table([
      { title: "Name", render: (r) => el("button", { type: "button", class: "link", onclick: () => edit(r) }, r.name) },
      { title: "Severity", render: (r) => `Sev${r.properties.severity}` },
      { title: "Enabled", render: (r) => String(r.properties.enabled) },
      { title: "Frequency", render: (r) => r.properties.evaluationFrequency },
      { title: "Scopes", render: (r) => (r.properties.scopes || []).map((s) => s.split("/").pop()).join(", ") },
    ], items));
  };
  const edit = (r) => {
    const body = { location: r.location, tags: r.tags, properties: r.properties, identity: r.identity };
    jsonEditor(editor, { title: `Edit ${r.name}`, path: r.id, version, body, onSaved: load });
  };
  pane.append(el("div", { class: "toolbar" }, el("button", { type: "button", class: "primary", onclick: () =>
    jsonEditor(editor, { title: "New log search alert rule", path: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Insights/scheduledQueryRules/new-rule`, version, body: template, onSaved: load }) }, "New alert rule")), list, editor);
  await load();
}

async function groups(pane, state, sub, rg) {
  const version = "2023-01-01";
  const editor = el("section", {});
  const list = el("div", {});
  const msg = el("p", { role: "status", "aria-live": "polite" });
  const template = { location: "Global", properties: { groupShortName: "ops", enabled: true, emailReceivers: [], webhookReceivers: [] } };
  const load = async () => {
    clear(list);
    const items = await listUnder(state, "Microsoft.Insights/actionGroups", version);
    list.append(table([
      { title: "Name", render: (g) => el("button", { type: "button", class: "link", onclick: () => jsonEditor(editor, { title: `Edit ${g.name}`, path: g.id, version, body: { location: g.location, tags: g.tags, properties: g.properties }, onSaved: load }) }, g.name) },
      { title: "Short name", render: (g) => g.properties.groupShortName },
      { title: "Receivers", render: (g) => `${(g.properties.emailReceivers || []).length} email, ${(g.properties.webhookReceivers || []).length} webhook` },
      { title: "Test", render: (g) => el("button", { type: "button", class: "secondary", onclick: async () => {
        msg.className = ""; msg.textContent = `Sending a test notification through ${g.name}…`;
        try { await arm.post(v(`${g.id}/createNotifications`, version), { alertType: "logalertv2" }); msg.className = "ok"; msg.textContent = `Test notification accepted for ${g.name}.`; }
        catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
      } }, "Test notification") },
    ], items));
  };
  pane.append(el("div", { class: "toolbar" }, el("button", { type: "button", class: "primary", onclick: () =>
    jsonEditor(editor, { title: "New action group", path: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Insights/actionGroups/new-group`, version, body: template, onSaved: load }) }, "New action group")), msg, list, editor);
  await load();
}
