// alerts.js: fired alerts (state, severity, history), log search alert
// rules, action groups with a test notification.
import { arm, v } from "./api.js";
import { el, clear, table, errorText } from "./dom.js";
import { listUnder, subscriptionOf, resourceGroupOf } from "./resources.js";
import { ruleForm, metricForm, activityForm, groupForm, VERSIONS } from "./alertforms.js";

const ALERTS_V = "2019-05-05-preview";

export async function mount(main, state) {
  main.append(el("h1", {}, "Alerts"));
  if (!state.workspace) { main.append(el("p", { class: "muted" }, "No subscription is visible to you.")); return; }
  const sub = subscriptionOf(state), rg = resourceGroupOf(state);
  const tabs = el("div", { class: "tabs", role: "tablist" });
  const pane = el("div", { role: "tabpanel" });
  main.append(tabs, pane);
  const views = { "Fired alerts": fired, "Log search rules": rules, "Metric rules": metricRules, "Activity log rules": activityRules, "Action groups": groups };
  const open = async (name) => {
    for (const b of tabs.children) b.setAttribute("aria-selected", String(b.textContent === name));
    clear(pane);
    try { await views[name](pane, state, sub, rg); } catch (err) { pane.append(el("p", { class: "error", role: "alert" }, errorText(err))); }
  };
  for (const name of Object.keys(views)) tabs.append(el("button", { type: "button", role: "tab", id: "tab-" + name.toLowerCase().replace(/\W+/g, "-"), onclick: () => open(name) }, name));
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

// resourceList shows a provider's resources with a form per item.
async function resourceList(pane, state, { provider, version, newLabel, columns, form, id }) {
  const editor = el("section", { "aria-live": "polite" });
  const list = el("div", {});
  const load = async () => {
    clear(list);
    const items = await listUnder(state, provider, version);
    list.append(table([
      { title: "Name", render: (r) => el("button", { type: "button", class: "link", onclick: () => form(editor, state, r, load) }, r.name) },
      ...columns,
    ], items));
  };
  pane.append(el("div", { class: "toolbar" }, el("button", { type: "button", class: "primary", id, onclick: () => form(editor, state, null, load) }, newLabel)), list, editor);
  await load();
}

const yes = (b) => (b === false ? "No" : "Yes");

function rules(pane, state) {
  return resourceList(pane, state, { provider: "Microsoft.Insights/scheduledQueryRules", version: VERSIONS.rule, newLabel: "New alert rule", id: "new-rule", form: ruleForm,
    columns: [
      { title: "Severity", render: (r) => `Sev${r.properties.severity}` },
      { title: "Enabled", render: (r) => yes(r.properties.enabled) },
      { title: "Frequency", render: (r) => r.properties.evaluationFrequency },
      { title: "Scopes", render: (r) => (r.properties.scopes || []).map((s) => s.split("/").pop()).join(", ") },
    ] });
}

function metricRules(pane, state) {
  return resourceList(pane, state, { provider: "Microsoft.Insights/metricAlerts", version: VERSIONS.metric, newLabel: "New metric alert rule", id: "new-metric", form: metricForm,
    columns: [
      { title: "Severity", render: (r) => `Sev${r.properties.severity}` },
      { title: "Enabled", render: (r) => yes(r.properties.enabled) },
      { title: "Criteria", render: (r) => ((r.properties.criteria && r.properties.criteria.allOf) || []).map((c) => `${c.metricName} ${c.operator} ${c.threshold}`).join("; ") },
    ] });
}

function activityRules(pane, state) {
  return resourceList(pane, state, { provider: "Microsoft.Insights/activityLogAlerts", version: VERSIONS.activity, newLabel: "New activity log alert rule", id: "new-activity", form: activityForm,
    columns: [
      { title: "Enabled", render: (r) => yes(r.properties.enabled) },
      { title: "Scopes", render: (r) => (r.properties.scopes || []).map((s) => s.split("/").pop()).join(", ") },
    ] });
}

function groups(pane, state) {
  return resourceList(pane, state, { provider: "Microsoft.Insights/actionGroups", version: VERSIONS.group, newLabel: "New action group", id: "new-group", form: groupForm,
    columns: [
      { title: "Short name", render: (g) => g.properties.groupShortName },
      { title: "Receivers", render: (g) => `${(g.properties.emailReceivers || []).length} email, ${(g.properties.webhookReceivers || []).length} webhook` },
    ] });
}
