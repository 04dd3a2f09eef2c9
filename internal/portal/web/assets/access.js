// access.js: Access control (IAM) — role assignments at a scope (direct and
// inherited), adding and removing them, role definitions, locks, and
// just-in-time access requests.
import { arm, listAll, v } from "./api.js";
import { el, clear, table, errorText } from "./dom.js";

const AUTHZ_V = "2022-04-01";
const LOCKS_V = "2020-05-01";

function newGuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40; b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function mount(main, state) {
  main.append(el("h1", {}, "Access control (IAM)"));
  if (!state.workspace) { main.append(el("p", { class: "muted" }, "No resource is visible to you.")); return; }
  const parts = state.workspace.id.split("/");
  const scopes = [
    [state.workspace.id, `Workspace ${state.workspace.name}`],
    [parts.slice(0, 5).join("/"), `Resource group ${parts[4]}`],
    [parts.slice(0, 3).join("/"), `Subscription ${parts[2]}`],
  ];
  const scopeSel = el("select", { id: "scope", "aria-label": "Scope" }, scopes.map(([id, label]) => el("option", { value: id }, label)));
  const body = el("div", {});
  main.append(el("div", { class: "toolbar" }, el("label", {}, "Scope ", scopeSel)), body);
  const load = async () => {
    clear(body);
    const scope = scopeSel.value;
    const msg = el("p", { role: "status", "aria-live": "polite", id: "iam-status" });
    body.append(msg);
    let roles = [];
    try { roles = await listAll(v(`${scope}/providers/Microsoft.Authorization/roleDefinitions`, AUTHZ_V)); } catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
    const roleName = new Map(roles.map((r) => [r.id.split("/").pop().toLowerCase(), r.properties.roleName]));
    // Role assignments.
    const assignBox = el("section", {}, el("h2", {}, "Role assignments"));
    body.append(assignBox);
    try {
      const as = await listAll(v(`${scope}/providers/Microsoft.Authorization/roleAssignments`, AUTHZ_V));
      assignBox.append(table([
        { title: "Principal", render: (a) => a.properties.principalId },
        { title: "Type", render: (a) => a.properties.principalType || "" },
        { title: "Role", render: (a) => roleName.get(a.properties.roleDefinitionId.split("/").pop().toLowerCase()) || a.properties.roleDefinitionId },
        { title: "Scope", render: (a) => a.properties.scope === scope ? "This resource" : `Inherited (${a.properties.scope || "/"})` },
        { title: "Condition", render: (a) => a.properties.condition ? el("code", {}, a.properties.condition) : "" },
        { title: "", render: (a) => a.properties.scope !== scope ? "" : el("button", { type: "button", class: "secondary", "aria-label": `Remove assignment ${a.name}`, onclick: async () => {
          try { await arm.del(v(a.id, AUTHZ_V)); await load(); } catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
        } }, "Remove") },
      ], as));
    } catch (err) { assignBox.append(el("p", { class: "error" }, errorText(err))); }
    // Add a role assignment.
    const principal = el("input", { type: "text", id: "principal", size: 38, required: true, placeholder: "object id" });
    const role = el("select", { id: "role" }, roles.map((r) => el("option", { value: r.id }, r.properties.roleName)));
    const condition = el("input", { type: "text", id: "condition", size: 50, placeholder: "optional ABAC condition" });
    const form = el("form", { class: "inline", "aria-label": "Add role assignment" },
      el("label", {}, "Principal object ID", principal), el("label", {}, "Role", role), el("label", {}, "Condition", condition),
      el("button", { type: "submit", class: "primary" }, "Add role assignment"));
    form.onsubmit = async (e) => {
      e.preventDefault();
      const props = { roleDefinitionId: role.value, principalId: principal.value.trim() };
      if (condition.value.trim()) { props.condition = condition.value.trim(); props.conditionVersion = "2.0"; }
      try {
        await arm.put(v(`${scope}/providers/Microsoft.Authorization/roleAssignments/${newGuid()}`, AUTHZ_V), { properties: props });
        await load();
        document.getElementById("iam-status").className = "ok";
        document.getElementById("iam-status").textContent = "Role assignment added.";
      } catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
    };
    assignBox.append(form);
    // Role definitions.
    body.append(el("section", {}, el("h2", {}, "Roles"), table([
      { title: "Role", render: (r) => r.properties.roleName },
      { title: "Type", render: (r) => r.properties.type || r.properties.roleType || "" },
      { title: "Description", render: (r) => r.properties.description || "" },
    ], roles)));
    // Locks.
    const lockBox = el("section", {}, el("h2", {}, "Locks"));
    body.append(lockBox);
    try {
      const locks = await listAll(v(`${scope}/providers/Microsoft.Authorization/locks`, LOCKS_V));
      lockBox.append(table([
        { title: "Name", render: (l) => l.name },
        { title: "Level", render: (l) => l.properties.level },
        { title: "Notes", render: (l) => l.properties.notes || "" },
        { title: "", render: (l) => el("button", { type: "button", class: "secondary", onclick: async () => {
          try { await arm.del(v(l.id, LOCKS_V)); await load(); } catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
        } }, "Remove") },
      ], locks));
      const name = el("input", { type: "text", required: true, size: 20 });
      const level = el("select", {}, ["CanNotDelete", "ReadOnly"].map((x) => el("option", { value: x }, x)));
      const lf = el("form", { class: "inline", "aria-label": "Add lock" }, el("label", {}, "Lock name", name), el("label", {}, "Level", level), el("button", { type: "submit", class: "secondary" }, "Add lock"));
      lf.onsubmit = async (e) => {
        e.preventDefault();
        try { await arm.put(v(`${scope}/providers/Microsoft.Authorization/locks/${encodeURIComponent(name.value)}`, LOCKS_V), { properties: { level: level.value } }); await load(); }
        catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
      };
      lockBox.append(lf);
    } catch (err) { lockBox.append(el("p", { class: "error" }, errorText(err))); }
    // Just-in-time access requests on the workspace.
    if (scope === state.workspace.id) {
      const jit = el("section", {}, el("h2", {}, "Just-in-time access requests"));
      body.append(jit);
      try {
        const reqs = await listAll(v(`${scope}/providers/Custos.Access/accessRequests`, "2026-11-01"));
        const decide = (r, verb) => el("button", { type: "button", class: "secondary", onclick: async () => {
          try { await arm.post(v(`${r.id}/${verb}`, "2026-11-01"), {}); await load(); } catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
        } }, verb === "approve" ? "Approve" : "Reject");
        jit.append(table([
          { title: "Requester", render: (r) => r.properties.requesterId || r.properties.principalId || "" },
          { title: "Justification", render: (r) => r.properties.justification || "" },
          { title: "Duration", render: (r) => r.properties.duration || "" },
          { title: "State", render: (r) => r.properties.state || r.properties.status || "" },
          { title: "", render: (r) => (r.properties.state || r.properties.status) === "Pending" ? el("span", {}, decide(r, "approve"), " ", decide(r, "reject")) : "" },
        ], reqs));
      } catch (err) { jit.append(el("p", { class: "muted" }, errorText(err))); }
    }
  };
  scopeSel.onchange = load;
  await load();
}
