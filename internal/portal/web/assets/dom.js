// dom.js: building DOM without innerHTML, so no server or user string is
// ever parsed as markup.

// el creates an element; attrs keys starting with "on" become listeners,
// others attributes (false/null/undefined are skipped); children may be
// strings, nodes, arrays or null.
export function el(tag, attrs = {}, ...children) {
  const n = document.createElement(tag);
  for (const [k, val] of Object.entries(attrs || {})) {
    if (val === false || val === null || val === undefined) continue;
    if (k.startsWith("on") && typeof val === "function") n.addEventListener(k.slice(2), val);
    else if (k === "dataset") Object.assign(n.dataset, val);
    else if (k === "style") setStyle(n, val);
    else n.setAttribute(k, val === true ? "" : String(val));
  }
  append(n, children);
  return n;
}

// setStyle applies "prop: value; ..." through the CSSOM: the page's CSP
// (style-src 'self') forbids style attributes, not style properties.
export function setStyle(n, decls) {
  for (const d of String(decls).split(";")) {
    const i = d.indexOf(":");
    if (i > 0) n.style.setProperty(d.slice(0, i).trim(), d.slice(i + 1).trim());
  }
}

function append(n, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(n, c);
    else n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(n) {
  while (n.firstChild) n.removeChild(n.firstChild);
}

// svg creates an SVG element.
export function svg(tag, attrs = {}, ...children) {
  const n = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, val] of Object.entries(attrs || {})) {
    if (val === false || val === null || val === undefined) continue;
    n.setAttribute(k, String(val));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    n.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return n;
}

// table renders rows of objects as an accessible list table.
export function table(columns, rows, caption) {
  // Focusable, so that a table wider than a phone's screen (it scrolls in
  // its own box there) can be scrolled with the keyboard.
  return el("table", { class: "list", tabindex: "0" },
    caption ? el("caption", { class: "muted" }, caption) : null,
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c.title)))),
    el("tbody", {}, rows.length === 0
      ? el("tr", {}, el("td", { colspan: columns.length, class: "muted" }, "Nothing to show."))
      : rows.map((r) => el("tr", {}, columns.map((c) => el("td", {}, c.render ? c.render(r) : r[c.key]))))));
}

// download offers text as a file.
export function download(name, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

// errorText words an API error for the page.
export function errorText(err) {
  if (!err) return "";
  return err.code ? `${err.code}: ${err.message}` : String(err.message || err);
}
