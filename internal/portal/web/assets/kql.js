// kql.js: KQL tokenizing for the editor's highlighting and completion. The
// operator and function names come from the server's KQL registry
// (/portal/language), so the editor offers exactly what the engine knows.
import { el } from "./dom.js";

export const language = { operators: new Set(), functions: new Set(), aggregations: new Set(), keywords: new Set() };

export async function loadLanguage() {
  if (language.operators.size) return language;
  const resp = await fetch("/portal/language", { credentials: "same-origin" });
  if (!resp.ok) return language;
  const data = await resp.json();
  for (const k of ["operators", "functions", "aggregations", "keywords"]) {
    language[k] = new Set(data[k] || []);
  }
  return language;
}

// tokenize splits src into tokens {type, text, start}. Types: ws, com, str,
// num, word, op. It never throws: anything unknown is an "op" character.
export function tokenize(src) {
  const out = [];
  let i = 0;
  const push = (type, j) => { out.push({ type, text: src.slice(i, j), start: i }); i = j; };
  while (i < src.length) {
    const c = src[i];
    if (/\s/.test(c)) {
      let j = i + 1; while (j < src.length && /\s/.test(src[j])) j++; push("ws", j); continue;
    }
    if (c === "/" && src[i + 1] === "/") {
      let j = src.indexOf("\n", i); if (j < 0) j = src.length; push("com", j); continue;
    }
    const q = (c === "h" || c === "H" || c === "@") && (src[i + 1] === '"' || src[i + 1] === "'") ? 1 : 0;
    if (c === '"' || c === "'" || q) {
      const quote = src[i + q];
      const verbatim = c === "@";
      let j = i + q + 1;
      while (j < src.length && src[j] !== quote && src[j] !== "\n") { if (src[j] === "\\" && !verbatim) j++; j++; }
      push("str", Math.min(j + 1, src.length)); continue;
    }
    if (/[0-9]/.test(c)) {
      let j = i + 1; while (j < src.length && /[0-9a-zA-Z_.]/.test(src[j])) j++; push("num", j); continue;
    }
    if (/[A-Za-z_$]/.test(c)) {
      let j = i + 1; while (j < src.length && /[A-Za-z0-9_\-]/.test(src[j])) {
        // "project-away" is one word; "a-b" in an expression is not: keep
        // a hyphen only when it joins two letters of a known operator.
        if (src[j] === "-" && !language.operators.has((src.slice(i, j) + "-" + (src.slice(j + 1).match(/^[a-z]+/) || [""])[0]).toLowerCase())) break;
        j++;
      }
      push("word", j); continue;
    }
    push("op", i + 1);
  }
  return out;
}

function classOf(tok, prev) {
  switch (tok.type) {
    case "com": return "k-com";
    case "str": return "k-str";
    case "num": return "k-num";
    case "op": return tok.text === "|" ? "k-op" : "";
    case "word": {
      const w = tok.text.toLowerCase();
      if (prev && prev.text === "|" && language.operators.has(w)) return "k-kw";
      if (language.keywords.has(w)) return "k-kw";
      if (language.functions.has(w) || language.aggregations.has(w)) return "k-fn";
      return "";
    }
  }
  return "";
}

// highlight renders src as spans; errorAt (a character offset or -1) marks
// the token there with a wavy underline.
export function highlight(src, errorAt = -1, tables = new Set()) {
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const tok of tokenize(src)) {
    let cls = classOf(tok, prev);
    if (!cls && tok.type === "word" && tables.has(tok.text)) cls = "k-tbl";
    const hit = errorAt >= tok.start && errorAt < tok.start + Math.max(tok.text.length, 1) && tok.type !== "ws";
    if (hit) cls = (cls + " k-err").trim();
    frag.append(cls ? el("span", { class: cls }, tok.text) : document.createTextNode(tok.text));
    if (tok.type !== "ws" && tok.type !== "com") prev = tok;
  }
  if (errorAt >= src.length && errorAt >= 0) frag.append(el("span", { class: "k-err" }, " "));
  // A trailing newline needs a character after it to take up a line.
  frag.append("\n");
  return frag;
}

// offsetOf converts a 1-based line and column into a character offset.
export function offsetOf(src, line, col) {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const j = src.indexOf("\n", off);
    if (j < 0) return src.length;
    off = j + 1;
  }
  return Math.min(off + Math.max(col - 1, 0), src.length);
}

// completions suggests names for the word before the caret: operators after
// a pipe, otherwise columns of the tables in the query, tables and functions.
export function completions(src, caret, schema) {
  const before = src.slice(0, caret);
  const m = before.match(/[A-Za-z_][A-Za-z0-9_\-]*$/);
  const prefix = m ? m[0] : "";
  const head = before.slice(0, before.length - prefix.length);
  const afterPipe = /\|\s*$/.test(head);
  const atStart = /^\s*$/.test(head) || /(;|\(|union\s|join\s[^|]*\(\s*)$/i.test(head);
  const items = [];
  const add = (name, kind) => {
    if (name.toLowerCase().startsWith(prefix.toLowerCase()) && name !== prefix) items.push({ name, kind });
  };
  if (afterPipe) {
    for (const o of language.operators) add(o, "operator");
  } else if (atStart) {
    for (const t of schema.tables.keys()) add(t, "table");
  } else {
    const used = new Set(tokenize(src).filter((t) => t.type === "word" && schema.tables.has(t.text)).map((t) => t.text));
    for (const t of used) for (const c of schema.tables.get(t)) add(c.name, c.type);
    for (const f of language.functions) add(f, "function");
    for (const a of language.aggregations) add(a, "aggregation");
    for (const t of schema.tables.keys()) add(t, "table");
  }
  const seen = new Set();
  return {
    prefix,
    items: items.filter((x) => !seen.has(x.name) && seen.add(x.name)).slice(0, 200),
  };
}
