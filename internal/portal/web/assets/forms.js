// forms.js: labelled form fields whose validation messages come from the
// API: an ARM error's target ("properties.criteria.allOf[0].threshold")
// names the field, and the message is shown under it.
import { el, clear, errorText } from "./dom.js";

let seq = 0;

// Form collects fields by the request property path they edit.
export class Form {
  constructor(title, onSubmit) {
    this.fields = new Map(); // path → { input, msg }
    this.msg = el("p", { role: "status", "aria-live": "polite", class: "form-msg" });
    this.node = el("form", { class: "resource", "aria-label": title, novalidate: true });
    this.node.addEventListener("submit", async (e) => { e.preventDefault(); await onSubmit(); });
  }

  // field returns a labelled wrapper around input for property path.
  field(label, input, path, hint) {
    const { node, msg } = fieldNode(label, input, hint);
    if (path) {
      input.dataset.path = path;
      this.fields.set(path, { input, msg });
    }
    return node;
  }

  // register lets a composite control (the KQL editor) take messages for path.
  register(path, input, msg) { this.fields.set(path, { input, msg }); }

  clearErrors() {
    for (const { input, msg } of this.fields.values()) { input.removeAttribute("aria-invalid"); clear(msg); }
    this.msg.className = "form-msg"; this.msg.textContent = "";
  }

  // showError puts an API error at its field (the longest registered path
  // the target starts with), or in the form's message line.
  showError(err) {
    this.clearErrors();
    const target = err && err.body && err.body.error && err.body.error.target;
    let best = null;
    if (target) {
      for (const [p, f] of this.fields) {
        if ((target === p || target.startsWith(p + ".") || target.startsWith(p + "[")) && (!best || p.length > best[0].length)) best = [p, f];
      }
    }
    if (best) {
      const { input, msg } = best[1];
      input.setAttribute("aria-invalid", "true");
      msg.textContent = errorText(err);
      input.focus();
      this.msg.className = "form-msg error";
      this.msg.textContent = "The service refused the change; see the highlighted field.";
      return;
    }
    this.msg.className = "form-msg error";
    this.msg.textContent = errorText(err);
  }

  ok(text) { this.clearErrors(); this.msg.className = "form-msg ok"; this.msg.textContent = text; }
  busy(text) { this.clearErrors(); this.msg.textContent = text; }
}

// fieldNode is a label, the input, an optional hint and the slot for the
// API's message about it.
export function fieldNode(label, input, hint) {
  const id = input.id || `f${++seq}`;
  input.id = id;
  const msg = el("span", { class: "field-error", id: `${id}-err`, role: "alert" });
  const hintNode = hint ? el("span", { class: "hint", id: `${id}-hint` }, hint) : null;
  input.setAttribute("aria-describedby", [hintNode ? `${id}-hint` : "", `${id}-err`].filter(Boolean).join(" "));
  const isCheck = input.type === "checkbox";
  const node = el("div", { class: "field" + (isCheck ? " check" : "") },
    isCheck ? el("label", { for: id }, input, " ", label) : el("label", { for: id }, label),
    isCheck ? null : input, hintNode, msg);
  return { node, msg };
}

export function input(attrs = {}) { return el("input", { type: "text", ...attrs }); }
export function number(attrs = {}) { return el("input", { type: "number", ...attrs }); }
export function checkbox(checked, attrs = {}) { const c = el("input", { type: "checkbox", ...attrs }); c.checked = !!checked; return c; }

// select builds a <select> of [value, label] pairs (or plain values).
export function select(options, value, attrs = {}) {
  const s = el("select", attrs, options.map((o) => Array.isArray(o) ? el("option", { value: o[0] }, o[1]) : el("option", { value: o }, o)));
  if (value !== undefined && value !== null) s.value = String(value);
  return s;
}

// rows is an editable list of records under the request path base
// ("properties.emailReceivers"): make(record, f) builds one row, calling
// f(label, input, suffix) for each field, and returns { node, read() }.
// Reading the rows registers each field as base[i].suffix with form, so
// the API's messages land in the right row after rows were removed.
export function rows(form, base, title, items, make, addLabel) {
  const list = el("div", { class: "rows", role: "group", "aria-label": title });
  const entries = [];
  const add = (rec) => {
    const fields = [];
    const f = (label, inp, suffix, hint) => { const fn = fieldNode(label, inp, hint); fields.push({ suffix, input: inp, msg: fn.msg }); return fn.node; };
    const r = make(rec || {}, f);
    const remove = el("button", { type: "button", class: "secondary" }, "Remove");
    const wrap = el("div", { class: "row" }, r.node, remove);
    const entry = { wrap, read: r.read, fields };
    remove.onclick = () => { entries.splice(entries.indexOf(entry), 1); wrap.remove(); relabel(); };
    entries.push(entry);
    list.append(wrap);
    relabel();
  };
  const relabel = () => entries.forEach((e, i) => e.wrap.lastChild.setAttribute("aria-label", `Remove ${title.toLowerCase()} ${i + 1}`));
  for (const it of items || []) add(it);
  const addBtn = el("button", { type: "button", class: "secondary" }, addLabel || `Add ${title.toLowerCase()}`);
  addBtn.onclick = () => add();
  const read = () => {
    for (const p of [...form.fields.keys()]) if (p.startsWith(base + "[")) form.fields.delete(p);
    return entries.map((e, i) => {
      for (const fl of e.fields) form.register(`${base}[${i}]${fl.suffix ? "." + fl.suffix : ""}`, fl.input, fl.msg);
      return e.read();
    });
  };
  return { node: el("fieldset", { class: "rowset", id: "rows-" + base.replace(/\W+/g, "-") }, el("legend", {}, title), list, addBtn), read, add };
}

// splitList parses "a, b" into ["a", "b"].
export function splitList(s) { return String(s || "").split(",").map((x) => x.trim()).filter(Boolean); }
