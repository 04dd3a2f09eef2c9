// alertforms.js: forms for log search alert rules, metric alert rules,
// activity log alert rules and action groups. Each PUTs the resource with
// the ARM API and shows the API's validation message at the field it names.
import { arm, v } from "./api.js";
import { el, clear } from "./dom.js";
import { Form, input, number, checkbox, select, rows, splitList } from "./forms.js";
import { kqlEditor } from "./editor.js";
import { listUnder, subscriptionOf, resourceGroupOf } from "./resources.js";

export const VERSIONS = {
  rule: "2023-12-01", metric: "2018-03-01", activity: "2020-10-01", group: "2023-01-01",
};
const SEVERITIES = [["0", "0 - Critical"], ["1", "1 - Error"], ["2", "2 - Warning"], ["3", "3 - Informational"], ["4", "4 - Verbose"]];
const OPERATORS = ["GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual", "Equals"];
const AGGREGATIONS = ["Count", "Average", "Minimum", "Maximum", "Total"];
const FREQUENCIES = [["PT1M", "1 minute"], ["PT5M", "5 minutes"], ["PT10M", "10 minutes"], ["PT15M", "15 minutes"], ["PT30M", "30 minutes"],
  ["PT45M", "45 minutes"], ["PT1H", "1 hour"], ["PT2H", "2 hours"], ["PT3H", "3 hours"], ["PT6H", "6 hours"], ["PT12H", "12 hours"], ["P1D", "1 day"]];
const WINDOWS = FREQUENCIES.concat([["P2D", "2 days"]]);
const METRIC_FREQ = [["PT1M", "1 minute"], ["PT5M", "5 minutes"], ["PT15M", "15 minutes"], ["PT30M", "30 minutes"], ["PT1H", "1 hour"]];
const METRIC_WINDOWS = METRIC_FREQ.concat([["PT6H", "6 hours"], ["PT12H", "12 hours"], ["P1D", "1 day"]]);
const MUTE = [["", "Do not mute"], ["PT5M", "5 minutes"], ["PT10M", "10 minutes"], ["PT30M", "30 minutes"], ["PT1H", "1 hour"], ["PT6H", "6 hours"], ["P1D", "1 day"]];

const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$/;

// header starts an editor: the title, and for a new resource its name.
function nameInput(form, r, idPrefix) {
  const name = input({ id: `${idPrefix}-name`, required: true, value: r ? r.name : "", readonly: !!r, autocomplete: "off" });
  return { name, node: form.field("Name", name, "name", r ? "The name cannot be changed." : "Letters, digits, '-', '_' and '.'.") };
}

// resourcePath is where a new resource of provider type goes.
function resourcePath(state, type, name) {
  return `/subscriptions/${subscriptionOf(state)}/resourceGroups/${resourceGroupOf(state)}/providers/Microsoft.Insights/${type}/${encodeURIComponent(name)}`;
}

// actionGroupPicker offers the subscription's action groups as checkboxes.
async function actionGroupPicker(form, state, selected, path, idPrefix) {
  const chosen = new Set((selected || []).map((s) => s.toLowerCase()));
  const box = el("fieldset", { class: "checks", id: `${idPrefix}-groups` }, el("legend", {}, "Action groups"));
  const msg = el("span", { class: "field-error", role: "alert" });
  let groups = [];
  try { groups = await listUnder(state, "Microsoft.Insights/actionGroups", VERSIONS.group); } catch { /* shown as none */ }
  const boxes = groups.map((g) => {
    const c = checkbox(chosen.has(g.id.toLowerCase()), { value: g.id, "aria-label": `Action group ${g.name}` });
    box.append(el("label", { class: "check" }, c, " ", g.name));
    return c;
  });
  if (groups.length === 0) box.append(el("p", { class: "muted" }, "No action groups yet."));
  box.append(msg);
  form.register(path, box, msg);
  return { node: box, read: () => boxes.filter((c) => c.checked).map((c) => c.value) };
}

// deleteButton deletes after a second click, so a stray click deletes nothing.
function deleteButton(form, path, version, what, onDeleted) {
  const b = el("button", { type: "button", class: "secondary danger" }, `Delete ${what}`);
  let armed = false;
  b.onclick = async () => {
    if (!armed) { armed = true; b.textContent = `Confirm: delete ${what}`; return; }
    form.busy("Deleting…");
    try { await arm.del(v(path, version)); form.ok("Deleted."); if (onDeleted) onDeleted(); }
    catch (err) { form.showError(err); }
  };
  return b;
}

async function save(form, path, version, body, onSaved) {
  form.busy("Saving…");
  try {
    const out = await arm.put(v(path, version), body);
    form.ok("Saved.");
    if (onSaved) onSaved(out);
    return out;
  } catch (err) { form.showError(err); return null; }
}

function dimensionRows(form, base, dims) {
  return rows(form, base, "Dimensions", dims, (d, f) => {
    const name = input({ value: d.name || "", "aria-label": "Dimension column" });
    const op = select(["Include", "Exclude"], d.operator || "Include", { "aria-label": "Dimension operator" });
    const vals = input({ value: (d.values || ["*"]).join(", "), "aria-label": "Dimension values" });
    return { node: el("div", { class: "cols" }, f("Column", name, "name"), f("Operator", op, "operator"), f("Values", vals, "values", "Comma-separated; * splits by every value.")),
      read: () => ({ name: name.value.trim(), operator: op.value, values: splitList(vals.value) }) };
  }, "Add dimension");
}

// ruleForm edits a log search alert rule (Microsoft.Insights/scheduledQueryRules).
export async function ruleForm(container, state, r, onSaved) {
  clear(container);
  const p = (r && r.properties) || {};
  const c = (p.criteria && p.criteria.allOf && p.criteria.allOf[0]) || {};
  const fp = c.failingPeriods || {};
  const form = new Form(r ? `Edit alert rule ${r.name}` : "New log search alert rule", async () => {
    const crit = {
      query: ed.value, timeAggregation: agg.value, operator: op.value,
      threshold: threshold.value === "" ? undefined : Number(threshold.value),
      dimensions: dims.read(),
      failingPeriods: { numberOfEvaluationPeriods: Number(periods.value), minFailingPeriodsToAlert: Number(minFailing.value) },
    };
    if (measure.value.trim()) crit.metricMeasureColumn = measure.value.trim();
    const props = Object.assign({}, p, {
      displayName: display.value || undefined, description: desc.value || undefined,
      severity: Number(sev.value), enabled: enabled.checked, scopes: splitList(scopes.value),
      evaluationFrequency: freq.value, windowSize: win.value,
      criteria: { allOf: [Object.assign({}, c, crit)] },
      muteActionsDuration: mute.value || undefined, autoMitigate: autoMit.checked,
      actions: Object.assign({}, p.actions || {}, { actionGroups: groups.read() }),
    });
    delete props.evaluationStatus;
    let ident = { type: idType.value };
    if (idType.value === "UserAssigned") ident.userAssignedIdentities = { [uami.value.trim()]: {} };
    else if (r && r.identity && r.identity.type === idType.value) ident = r.identity;
    const name = r ? r.name : nm.name.value.trim();
    if (!r && !NAME_RE.test(name)) { form.showError({ body: { error: { target: "name" } }, code: "InvalidName", message: "Enter a name: letters, digits, '-', '_' and '.'." }); return; }
    const body = { location: (r && r.location) || (state.workspace && state.workspace.location) || "global", tags: (r && r.tags) || undefined, properties: props, identity: ident };
    const out = await save(form, r ? r.id : resourcePath(state, "scheduledQueryRules", name), VERSIONS.rule, body, onSaved);
    if (out && !r) ruleForm(container, state, out, onSaved);
  });
  const nm = nameInput(form, r, "sqr");
  const display = input({ id: "sqr-display", value: p.displayName || "" });
  const desc = input({ id: "sqr-description", value: p.description || "" });
  const sev = select(SEVERITIES, p.severity !== undefined ? p.severity : 3, { id: "sqr-severity" });
  const enabled = checkbox(p.enabled !== false, { id: "sqr-enabled" });
  const scopes = input({ id: "sqr-scopes", value: (p.scopes || [state.workspace.id]).join(", ") });
  const ed = kqlEditor({ id: "sqr-query", label: "Query", value: c.query || "Heartbeat\n| summarize AggregatedValue = count() by Computer", small: true });
  const queryMsg = el("span", { class: "field-error", role: "alert", id: "sqr-query-err" });
  ed.textarea.setAttribute("aria-describedby", "sqr-query-err");
  form.register("properties.criteria.allOf[0].query", ed.textarea, queryMsg);
  form.register("properties.criteria.allOf", ed.textarea, queryMsg);
  form.register("properties.criteria", ed.textarea, queryMsg);
  ed.loadSchema(state.workspace.properties && state.workspace.properties.customerId);
  const agg = select(AGGREGATIONS, c.timeAggregation || "Count", { id: "sqr-aggregation" });
  const measure = input({ id: "sqr-measure", value: c.metricMeasureColumn || "" });
  const op = select(OPERATORS, c.operator || "GreaterThan", { id: "sqr-operator" });
  const threshold = number({ id: "sqr-threshold", step: "any", value: c.threshold !== undefined ? c.threshold : 0 });
  const dims = dimensionRows(form, "properties.criteria.allOf[0].dimensions", c.dimensions || []);
  const freq = select(FREQUENCIES, p.evaluationFrequency || "PT5M", { id: "sqr-frequency" });
  const win = select(WINDOWS, p.windowSize || "PT5M", { id: "sqr-window" });
  const periods = number({ id: "sqr-periods", min: 1, max: 6, value: fp.numberOfEvaluationPeriods || 1 });
  const minFailing = number({ id: "sqr-min-failing", min: 1, max: 6, value: fp.minFailingPeriodsToAlert || 1 });
  const mute = select(MUTE, p.muteActionsDuration || "", { id: "sqr-mute" });
  const autoMit = checkbox(p.autoMitigate !== false, { id: "sqr-automitigate" });
  const id = (r && r.identity) || { type: "SystemAssigned" };
  const idType = select([["SystemAssigned", "System-assigned"], ["UserAssigned", "User-assigned"]], id.type || "SystemAssigned", { id: "sqr-identity" });
  const uami = input({ id: "sqr-uami", value: Object.keys(id.userAssignedIdentities || {})[0] || "" });
  const groups = await actionGroupPicker(form, state, p.actions && p.actions.actionGroups, "properties.actions.actionGroups", "sqr");
  form.node.append(
    el("h2", {}, r ? `Alert rule ${r.name}` : "New log search alert rule"),
    el("fieldset", {}, el("legend", {}, "Details"), nm.node, form.field("Display name", display, "properties.displayName"),
      form.field("Description", desc, "properties.description"), form.field("Severity", sev, "properties.severity"),
      form.field("Enabled", enabled, "properties.enabled"), form.field("Scopes", scopes, "properties.scopes", "Workspace resource IDs, comma-separated.")),
    el("fieldset", {}, el("legend", {}, "Condition"),
      el("div", { class: "field" }, el("label", { for: "sqr-query" }, "Query"), ed.root, queryMsg),
      el("div", { class: "cols" }, form.field("Aggregation", agg, "properties.criteria.allOf[0].timeAggregation"),
        form.field("Measure column", measure, "properties.criteria.allOf[0].metricMeasureColumn", "Needed unless the aggregation is Count."),
        form.field("Operator", op, "properties.criteria.allOf[0].operator"), form.field("Threshold", threshold, "properties.criteria.allOf[0].threshold")),
      dims.node,
      el("div", { class: "cols" }, form.field("Number of evaluation periods", periods, "properties.criteria.allOf[0].failingPeriods.numberOfEvaluationPeriods"),
        form.field("Failing periods to alert", minFailing, "properties.criteria.allOf[0].failingPeriods.minFailingPeriodsToAlert"))),
    el("fieldset", {}, el("legend", {}, "Evaluation"),
      el("div", { class: "cols" }, form.field("Frequency of evaluation", freq, "properties.evaluationFrequency"), form.field("Window (lookback)", win, "properties.windowSize"),
        form.field("Mute actions for", mute, "properties.muteActionsDuration")),
      form.field("Automatically resolve alerts", autoMit, "properties.autoMitigate")),
    el("fieldset", {}, el("legend", {}, "Actions and identity"), groups.node,
      el("div", { class: "cols" }, form.field("Identity", idType, "identity.type"), form.field("User-assigned identity", uami, "identity.userAssignedIdentities", "Its resource ID, when user-assigned."))),
    el("div", { class: "toolbar" }, el("button", { type: "submit", class: "primary", id: "sqr-save" }, "Save"),
      r ? deleteButton(form, r.id, VERSIONS.rule, "rule", () => { clear(container); if (onSaved) onSaved(null); }) : null),
    form.msg);
  container.append(form.node);
  return form;
}

// metricForm edits a metric alert rule (Microsoft.Insights/metricAlerts).
export async function metricForm(container, state, r, onSaved) {
  clear(container);
  const p = (r && r.properties) || {};
  const form = new Form(r ? `Edit metric alert rule ${r.name}` : "New metric alert rule", async () => {
    const name = r ? r.name : nm.name.value.trim();
    if (!r && !NAME_RE.test(name)) { form.showError({ body: { error: { target: "name" } }, code: "InvalidName", message: "Enter a name: letters, digits, '-', '_' and '.'." }); return; }
    const props = Object.assign({}, p, {
      description: desc.value, severity: Number(sev.value), enabled: enabled.checked, scopes: splitList(scopes.value),
      evaluationFrequency: freq.value, windowSize: win.value, autoMitigate: autoMit.checked,
      criteria: { "odata.type": (p.criteria && p.criteria["odata.type"]) || "Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria", allOf: crits.read() },
      actions: groups.read().map((id) => ({ actionGroupId: id })),
    });
    delete props.evaluationStatus;
    const body = { location: (r && r.location) || "global", tags: (r && r.tags) || undefined, properties: props };
    if (r && r.identity) body.identity = { type: r.identity.type, userAssignedIdentities: r.identity.userAssignedIdentities };
    const out = await save(form, r ? r.id : resourcePath(state, "metricAlerts", name), VERSIONS.metric, body, onSaved);
    if (out && !r) metricForm(container, state, out, onSaved);
  });
  const nm = nameInput(form, r, "mar");
  const desc = input({ id: "mar-description", value: p.description || "" });
  const sev = select(SEVERITIES, p.severity !== undefined ? p.severity : 3, { id: "mar-severity" });
  const enabled = checkbox(p.enabled !== false, { id: "mar-enabled" });
  const scopes = input({ id: "mar-scopes", value: (p.scopes || [state.workspace.id]).join(", ") });
  const freq = select(METRIC_FREQ, p.evaluationFrequency || "PT1M", { id: "mar-frequency" });
  const win = select(METRIC_WINDOWS, p.windowSize || "PT5M", { id: "mar-window" });
  const autoMit = checkbox(p.autoMitigate !== false, { id: "mar-automitigate" });
  const existing = (p.criteria && p.criteria.allOf) || [{ name: "cpu", metricNamespace: "Processor", metricName: "% Processor Time", timeAggregation: "Average", operator: "GreaterThan", threshold: 80 }];
  const crits = rows(form, "properties.criteria.allOf", "Criteria", existing, (cr, f) => {
    const name = input({ value: cr.name || "", "aria-label": "Criterion name" });
    const ns = input({ value: cr.metricNamespace || "", "aria-label": "Metric namespace" });
    const metric = input({ value: cr.metricName || "", "aria-label": "Metric name" });
    const agg = select(["Average", "Minimum", "Maximum", "Total", "Count"], cr.timeAggregation || "Average", { "aria-label": "Aggregation" });
    const op = select(OPERATORS, cr.operator || "GreaterThan", { "aria-label": "Operator" });
    const th = number({ step: "any", value: cr.threshold !== undefined ? cr.threshold : 0, "aria-label": "Threshold" });
    const dims = input({ value: (cr.dimensions || []).map((d) => `${d.name}${d.operator === "Exclude" ? "!=" : "="}${(d.values || []).join("|")}`).join(", "), "aria-label": "Dimensions" });
    return {
      node: el("div", { class: "cols" }, f("Name", name, "name"), f("Namespace", ns, "metricNamespace", "Perf object, Perf/<object> or InsightsMetrics/<namespace>."),
        f("Metric", metric, "metricName"), f("Aggregation", agg, "timeAggregation"), f("Operator", op, "operator"), f("Threshold", th, "threshold"),
        f("Dimensions", dims, "dimensions", "name=v1|v2 or name!=v, comma-separated; name=* splits.")),
      read: () => Object.assign({}, cr, {
        criterionType: "StaticThresholdCriterion", name: name.value.trim(), metricNamespace: ns.value.trim(), metricName: metric.value.trim(),
        timeAggregation: agg.value, operator: op.value, threshold: Number(th.value),
        dimensions: splitList(dims.value).map((d) => { const ex = d.includes("!="); const [k, vs] = d.split(ex ? "!=" : "="); return { name: (k || "").trim(), operator: ex ? "Exclude" : "Include", values: String(vs || "*").split("|").map((x) => x.trim()).filter(Boolean) }; }),
      }),
    };
  }, "Add criterion");
  const groups = await actionGroupPicker(form, state, (p.actions || []).map((a) => a.actionGroupId), "properties.actions", "mar");
  form.node.append(
    el("h2", {}, r ? `Metric alert rule ${r.name}` : "New metric alert rule"),
    el("fieldset", {}, el("legend", {}, "Details"), nm.node, form.field("Description", desc, "properties.description"),
      form.field("Severity", sev, "properties.severity"), form.field("Enabled", enabled, "properties.enabled"),
      form.field("Scopes", scopes, "properties.scopes", "Workspace resource IDs, comma-separated.")),
    el("fieldset", {}, el("legend", {}, "Condition"), crits.node,
      el("div", { class: "cols" }, form.field("Frequency of evaluation", freq, "properties.evaluationFrequency"), form.field("Window", win, "properties.windowSize")),
      form.field("Automatically resolve alerts", autoMit, "properties.autoMitigate")),
    el("fieldset", {}, el("legend", {}, "Actions"), groups.node),
    el("div", { class: "toolbar" }, el("button", { type: "submit", class: "primary", id: "mar-save" }, "Save"),
      r ? deleteButton(form, r.id, VERSIONS.metric, "rule", () => { clear(container); if (onSaved) onSaved(null); }) : null),
    form.msg);
  container.append(form.node);
  return form;
}

const ACTIVITY_FIELDS = ["category", "operationName", "status", "subStatus", "resourceId", "resourceGroup", "resourceType", "resourceProvider",
  "caller", "level", "correlationId", "authorization.action", "authorization.scope"];

// activityForm edits an activity log alert rule (Microsoft.Insights/activityLogAlerts).
export async function activityForm(container, state, r, onSaved) {
  clear(container);
  const p = (r && r.properties) || {};
  const form = new Form(r ? `Edit activity log alert rule ${r.name}` : "New activity log alert rule", async () => {
    const name = r ? r.name : nm.name.value.trim();
    if (!r && !NAME_RE.test(name)) { form.showError({ body: { error: { target: "name" } }, code: "InvalidName", message: "Enter a name: letters, digits, '-', '_' and '.'." }); return; }
    const props = Object.assign({}, p, {
      description: desc.value, enabled: enabled.checked, scopes: splitList(scopes.value),
      condition: { allOf: conds.read() },
      actions: { actionGroups: groups.read().map((id) => ({ actionGroupId: id })) },
    });
    delete props.evaluationStatus;
    const body = { location: (r && r.location) || "global", tags: (r && r.tags) || undefined, properties: props };
    const out = await save(form, r ? r.id : resourcePath(state, "activityLogAlerts", name), VERSIONS.activity, body, onSaved);
    if (out && !r) activityForm(container, state, out, onSaved);
  });
  const nm = nameInput(form, r, "ala");
  const desc = input({ id: "ala-description", value: p.description || "" });
  const enabled = checkbox(p.enabled !== false, { id: "ala-enabled" });
  const scopes = input({ id: "ala-scopes", value: (p.scopes || [`/subscriptions/${subscriptionOf(state)}`]).join(", ") });
  const existing = (p.condition && p.condition.allOf) || [{ field: "category", equals: "Administrative" }, { field: "operationName", equals: "Microsoft.Authorization/roleAssignments/write" }];
  const conds = rows(form, "properties.condition.allOf", "Conditions", existing, (c, f) => {
    // An anyOf entry is edited as one field with values separated by "|".
    const leaf = c.anyOf && c.anyOf.length ? c.anyOf[0] : c;
    const field = el("input", { type: "text", list: "ala-fields", value: leaf.field || "category", "aria-label": "Field" });
    const how = select([["equals", "equals"], ["containsAny", "contains any of"]], leaf.containsAny ? "containsAny" : "equals", { "aria-label": "Comparison" });
    const vals = c.anyOf && c.anyOf.length ? c.anyOf.map((l) => l.equals || (l.containsAny || []).join(", ")).join(" | ") : (leaf.containsAny ? leaf.containsAny.join(", ") : (leaf.equals || ""));
    const val = input({ value: vals, "aria-label": "Value" });
    return {
      node: el("div", { class: "cols" }, f("Field", field, "field"), f("Comparison", how, "comparison"), f("Value", val, "", "For several alternatives separate them with |; contains any of takes a comma-separated list.")),
      read: () => {
        const fieldName = field.value.trim();
        const alts = val.value.split("|").map((x) => x.trim()).filter(Boolean);
        const mk = (x) => how.value === "containsAny" ? { field: fieldName, containsAny: splitList(x) } : { field: fieldName, equals: x };
        return alts.length > 1 ? { anyOf: alts.map(mk) } : mk(alts[0] || "");
      },
    };
  }, "Add condition");
  const datalist = el("datalist", { id: "ala-fields" }, ACTIVITY_FIELDS.map((f) => el("option", { value: f })));
  const groups = await actionGroupPicker(form, state, ((p.actions && p.actions.actionGroups) || []).map((a) => a.actionGroupId), "properties.actions.actionGroups", "ala");
  form.node.append(
    el("h2", {}, r ? `Activity log alert rule ${r.name}` : "New activity log alert rule"),
    el("fieldset", {}, el("legend", {}, "Details"), nm.node, form.field("Description", desc, "properties.description"),
      form.field("Enabled", enabled, "properties.enabled"), form.field("Scopes", scopes, "properties.scopes", "Subscriptions, resource groups or resources, comma-separated.")),
    el("fieldset", {}, el("legend", {}, "Condition: every row must hold"), conds.node, datalist),
    el("fieldset", {}, el("legend", {}, "Actions"), groups.node),
    el("div", { class: "toolbar" }, el("button", { type: "submit", class: "primary", id: "ala-save" }, "Save"),
      r ? deleteButton(form, r.id, VERSIONS.activity, "rule", () => { clear(container); if (onSaved) onSaved(null); }) : null),
    form.msg);
  container.append(form.node);
  return form;
}

// groupForm edits an action group: email, webhook and secure webhook
// (Entra-authenticated) receivers.
export async function groupForm(container, state, g, onSaved) {
  clear(container);
  const p = (g && g.properties) || {};
  const secrets = el("div", { role: "status", "aria-live": "polite" });
  const form = new Form(g ? `Edit action group ${g.name}` : "New action group", async () => {
    const name = g ? g.name : nm.name.value.trim();
    if (!g && !NAME_RE.test(name)) { form.showError({ body: { error: { target: "name" } }, code: "InvalidName", message: "Enter a name: letters, digits, '-', '_' and '.'." }); return; }
    const props = Object.assign({}, p, { groupShortName: short.value, enabled: enabled.checked, emailReceivers: emails.read(), webhookReceivers: hooks.read() });
    const body = { location: (g && g.location) || "Global", tags: (g && g.tags) || undefined, properties: props };
    const out = await save(form, g ? g.id : resourcePath(state, "actionGroups", name), VERSIONS.group, body, onSaved);
    if (!out) return;
    // A new webhook receiver's signing secret is shown once, in the PUT's answer.
    const shown = ((out.properties && out.properties.webhookReceivers) || []).filter((w) => w.custosSigningSecret);
    const next = await groupForm(container, state, out, onSaved);
    next.ok("Saved.");
    if (shown.length) {
      container.prepend(el("div", { class: "notice", role: "status" }, el("strong", {}, "Copy the signing secrets now; they are not shown again: "),
        shown.map((w) => el("div", {}, `${w.name}: `, el("code", {}, w.custosSigningSecret)))));
    }
  });
  const nm = nameInput(form, g, "ag");
  const short = input({ id: "ag-short", value: p.groupShortName || "", maxlength: 12 });
  const enabled = checkbox(p.enabled !== false, { id: "ag-enabled" });
  const emails = rows(form, "properties.emailReceivers", "Email receivers", p.emailReceivers || [], (e, f) => {
    const name = input({ value: e.name || "", "aria-label": "Receiver name" });
    const addr = el("input", { type: "email", value: e.emailAddress || "", "aria-label": "Email address" });
    const common = checkbox(e.useCommonAlertSchema !== false, { "aria-label": "Use the common alert schema" });
    return { node: el("div", { class: "cols" }, f("Name", name, "name"), f("Email address", addr, "emailAddress"), f("Common alert schema", common, "useCommonAlertSchema")),
      read: () => ({ name: name.value.trim(), emailAddress: addr.value.trim(), useCommonAlertSchema: common.checked }) };
  }, "Add email receiver");
  const hooks = rows(form, "properties.webhookReceivers", "Webhook receivers", p.webhookReceivers || [], (w, f) => {
    const name = input({ value: w.name || "", "aria-label": "Receiver name" });
    const uri = el("input", { type: "url", value: w.serviceUri || "", "aria-label": "Webhook URL" });
    const common = checkbox(w.useCommonAlertSchema !== false, { "aria-label": "Use the common alert schema" });
    const secure = checkbox(!!w.useAadAuth, { "aria-label": "Secure webhook" });
    const obj = input({ value: w.objectId || "", "aria-label": "Application object ID" });
    const idu = input({ value: w.identifierUri || "", "aria-label": "Application ID URI" });
    const ten = input({ value: w.tenantId || "", "aria-label": "Tenant ID" });
    const aad = el("div", { class: "cols" }, f("Application object ID", obj, "objectId"), f("Application ID URI", idu, "identifierUri"), f("Tenant ID", ten, "tenantId"));
    aad.hidden = !secure.checked;
    secure.addEventListener("change", () => { aad.hidden = !secure.checked; });
    return { node: el("div", {}, el("div", { class: "cols" }, f("Name", name, "name"), f("URL", uri, "serviceUri"), f("Common alert schema", common, "useCommonAlertSchema"),
      f("Secure webhook (Entra token)", secure, "useAadAuth")), aad),
      read: () => {
        const out = { name: name.value.trim(), serviceUri: uri.value.trim(), useCommonAlertSchema: common.checked, useAadAuth: secure.checked };
        if (secure.checked) Object.assign(out, { objectId: obj.value.trim(), identifierUri: idu.value.trim(), tenantId: ten.value.trim() });
        return out;
      } };
  }, "Add webhook receiver");
  form.node.append(
    el("h2", {}, g ? `Action group ${g.name}` : "New action group"), secrets,
    el("fieldset", {}, el("legend", {}, "Details"), nm.node, form.field("Display name (short)", short, "properties.groupShortName", "At most 12 characters; shown in notifications."),
      form.field("Enabled", enabled, "properties.enabled")),
    emails.node, hooks.node,
    el("div", { class: "toolbar" }, el("button", { type: "submit", class: "primary", id: "ag-save" }, "Save"),
      g ? testButton(form, g) : null,
      g ? deleteButton(form, g.id, VERSIONS.group, "action group", () => { clear(container); if (onSaved) onSaved(null); }) : null),
    form.msg);
  container.append(form.node);
  return form;
}

// testButton sends a test notification through the saved group and
// follows its status (per receiver: sent, failed with the reason, pending).
export function testButton(form, g) {
  return el("button", { type: "button", class: "secondary", id: "ag-test", onclick: async () => {
    form.busy(`Sending a test notification through ${g.name}…`);
    let loc;
    try {
      const out = await arm.post(v(`${g.id}/createNotifications`, VERSIONS.group), { alertType: "logalertv2" }, { withLocation: true });
      loc = out.location;
      form.ok(`Test notification accepted for ${g.name}.`);
    } catch (err) { form.showError(err); return; }
    if (!loc) return;
    const path = new URL(loc, location.origin);
    for (let i = 0; i < 30; i++) {
      let st;
      try { st = await arm.get(path.pathname + path.search); } catch { return; }
      const parts = (st.actionDetails || []).map((d) => `${d.MechanismType} ${d.Name}: ${d.Status}${d.Detail ? " (" + d.Detail + ")" : ""}`);
      form.ok(`Test notification for ${g.name}: ${st.state}. ${parts.join("; ")}`);
      if (st.state === "Complete") return;
      await new Promise((res) => setTimeout(res, 2000));
    }
  } }, "Test notification");
}
