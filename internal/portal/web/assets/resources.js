// resources.js: shared pieces of the resource blades — subscription lists
// and a JSON editor that PUTs a resource body and shows the API's
// validation message.
import { arm, listAll, v } from "./api.js";
import { el, clear, errorText } from "./dom.js";

export function subscriptionOf(state) {
  return state.workspace ? state.workspace.id.split("/")[2] : "";
}

export function resourceGroupOf(state) {
  return state.workspace ? state.workspace.id.split("/")[4] : "";
}

// listUnder lists a provider's resources in the workspace's subscription.
export function listUnder(state, provider, version) {
  return listAll(v(`/subscriptions/${subscriptionOf(state)}/providers/${provider}`, version));
}

// jsonEditor shows a resource body for editing; save PUTs it at path.
export function jsonEditor(container, { title, path, version, body, onSaved }) {
  clear(container);
  const id = "json-" + Math.random().toString(36).slice(2);
  const area = el("textarea", { id, rows: 18, cols: 90, spellcheck: "false", class: "mono", "aria-label": `${title} (JSON)` });
  area.value = JSON.stringify(body, null, 2);
  const pathInput = el("input", { type: "text", size: 90, value: path, "aria-label": "Resource ID" });
  const msg = el("p", { role: "status", "aria-live": "polite" });
  const save = el("button", { type: "button", class: "primary" }, "Save");
  save.onclick = async () => {
    msg.className = ""; msg.textContent = "Saving…";
    let parsed;
    try { parsed = JSON.parse(area.value); } catch (err) { msg.className = "error"; msg.textContent = `Not valid JSON: ${err.message}`; return; }
    try {
      const out = await arm.put(v(pathInput.value, version), parsed);
      msg.className = "ok"; msg.textContent = "Saved.";
      if (onSaved) onSaved(out);
    } catch (err) { msg.className = "error"; msg.textContent = errorText(err); }
  };
  container.append(el("h2", {}, title), el("label", {}, "Resource ID ", pathInput), el("div", {}, area), el("div", { class: "toolbar" }, save), msg);
  area.focus();
}
