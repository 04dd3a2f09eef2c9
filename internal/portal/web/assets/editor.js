// editor.js: the KQL editor shared by the Logs blade and the log search
// alert rule form — a transparent textarea over a highlighted <pre>, with
// completion of operators, tables, columns and functions and the server's
// error position underlined.
import { logs } from "./api.js";
import { el, clear } from "./dom.js";
import { highlight, completions, loadLanguage } from "./kql.js";

let seq = 0;

// kqlEditor builds an editor. opts: id (the textarea's id), label (its
// accessible name), value, onRun (Shift+Enter), describedBy.
export function kqlEditor(opts = {}) {
  const n = ++seq;
  const schema = { tables: new Map() };
  const listID = `completion-${n}`;
  const textarea = el("textarea", { id: opts.id || `kql-${n}`, spellcheck: "false", autocomplete: "off", "aria-label": opts.label || "KQL query",
    "aria-autocomplete": "list", "aria-controls": listID, "aria-describedby": opts.describedBy });
  const pre = el("pre", { "aria-hidden": "true" });
  const popup = el("div", { class: "complete", id: listID, role: "listbox", hidden: true, "aria-label": "Completions" });
  const root = el("div", { class: "editor" + (opts.small ? " small" : "") }, pre, textarea, popup);
  let errorAt = -1;
  const refresh = () => {
    clear(pre);
    pre.append(highlight(textarea.value, errorAt, schema.tables));
    pre.scrollTop = textarea.scrollTop;
  };
  textarea.value = opts.value || "";
  textarea.addEventListener("scroll", () => { pre.scrollTop = textarea.scrollTop; });

  let items = [], sel = 0, prefix = "";
  const closePopup = () => { popup.hidden = true; textarea.removeAttribute("aria-activedescendant"); };
  const showPopup = () => {
    const c = completions(textarea.value, textarea.selectionStart, schema);
    items = c.items; prefix = c.prefix; sel = 0;
    if (items.length === 0 || (prefix === "" && !/\|\s*$/.test(textarea.value.slice(0, textarea.selectionStart)))) { closePopup(); return; }
    clear(popup);
    items.forEach((it, i) => popup.append(el("div", { role: "option", id: `opt-${n}-${i}`, "aria-selected": String(i === sel),
      onmousedown: (e) => { e.preventDefault(); sel = i; accept(); } }, it.name, el("small", {}, it.kind))));
    const lines = textarea.value.slice(0, textarea.selectionStart).split("\n");
    popup.style.top = `${Math.min(lines.length * 19.5 + 8, 150) - textarea.scrollTop}px`;
    popup.style.left = `${Math.min(lines[lines.length - 1].length * 7.8 + 8, 600)}px`;
    popup.hidden = false;
  };
  const accept = () => {
    const it = items[sel];
    if (!it) return;
    const s = textarea.selectionStart;
    textarea.setRangeText(it.name, s - prefix.length, s, "end");
    closePopup();
    refresh();
  };
  const move = (d) => {
    sel = (sel + d + items.length) % items.length;
    popup.querySelectorAll("[role=option]").forEach((o, i) => o.setAttribute("aria-selected", String(i === sel)));
    const o = popup.querySelector(`#opt-${n}-${sel}`);
    if (o) { o.scrollIntoView({ block: "nearest" }); textarea.setAttribute("aria-activedescendant", o.id); }
  };
  textarea.addEventListener("input", () => { errorAt = -1; refresh(); showPopup(); });
  textarea.addEventListener("blur", () => setTimeout(closePopup, 100));
  textarea.addEventListener("keydown", (e) => {
    if (!popup.hidden) {
      if (e.key === "ArrowDown") { e.preventDefault(); move(1); return; }
      if (e.key === "ArrowUp") { e.preventDefault(); move(-1); return; }
      if (e.key === "Tab" || (e.key === "Enter" && !e.shiftKey)) { e.preventDefault(); accept(); return; }
      if (e.key === "Escape") { e.preventDefault(); closePopup(); return; }
    }
    if (e.key === "Enter" && e.shiftKey && opts.onRun) { e.preventDefault(); opts.onRun(); }
    if (e.key === " " && e.ctrlKey) { e.preventDefault(); showPopup(); }
  });
  refresh();
  return {
    root, textarea, schema,
    get value() { return textarea.value; },
    set value(s) { textarea.value = s; errorAt = -1; refresh(); },
    // setError underlines the character at offset (-1 clears).
    setError(offset) { errorAt = offset; refresh(); },
    refresh, closePopup,
    // loadSchema fills completion from the language registry and the
    // workspace schema the caller may read (customerId: the workspace's).
    async loadSchema(customerId) {
      await loadLanguage();
      refresh();
      if (!customerId) return;
      try {
        const md = await logs.metadata(customerId);
        for (const t of (md && md.tables) || []) schema.tables.set(t.name, t.columns || []);
        refresh();
      } catch { /* completion works without the schema */ }
    },
  };
}
