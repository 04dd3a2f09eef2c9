// app.js: the portal shell — session, workspace picker, blade routing.
import { arm, listAll, setCSRF, signOut, v } from "./api.js";
import { el, clear } from "./dom.js";

const blades = {
  logs: () => import("./logs.js"),
  tables: () => import("./tables.js"),
  alerts: () => import("./alerts.js"),
  collection: () => import("./collection.js"),
  access: () => import("./access.js"),
  activity: () => import("./activity.js"),
  security: () => import("./security.js"),
};

export const state = {
  user: null,
  workspaces: [],      // ARM workspace resources
  workspace: null,     // the selected one
};

const main = document.getElementById("main");

let providers = [];

function showSignIn(message) {
  clear(main);
  document.getElementById("nav").hidden = true;
  main.append(el("section", { class: "signin" },
    el("h1", {}, "Sign in to Custos"),
    message ? el("p", { class: "error", role: "alert" }, message) : null,
    el("p", { class: "muted" }, "Use your Custos account or your organization's identity provider."),
    el("a", { class: "primary", href: "/portal/login", id: "signin" }, "Sign in"),
    providers.map((p, i) => el("p", {}, el("a", { class: "primary", href: p.login, id: `signin-${i}` }, `Sign in with ${p.name}`)))));
}

async function loadSession() {
  const resp = await fetch("/portal/session", { credentials: "same-origin" });
  if (!resp.ok) throw new Error(`session: ${resp.status}`);
  const s = await resp.json();
  providers = s.providers || [];
  return s.signedIn ? s : null;
}

async function loadWorkspaces() {
  const subs = await listAll(v("/subscriptions", "2022-12-01"));
  const all = [];
  for (const s of subs) {
    const ws = await listAll(v(`/subscriptions/${s.subscriptionId}/providers/Microsoft.OperationalInsights/workspaces`, "2022-10-01"))
      .catch(() => []);
    all.push(...ws);
  }
  all.sort((a, b) => a.name.localeCompare(b.name));
  return all;
}

function pickWorkspace(id) {
  state.workspace = state.workspaces.find((w) => w.id === id) || state.workspaces[0] || null;
  if (state.workspace) sessionStorage.setItem("custos.workspace", state.workspace.id);
  window.dispatchEvent(new CustomEvent("custos:workspace"));
}

function fillWorkspacePicker() {
  const sel = document.getElementById("workspace");
  clear(sel);
  for (const w of state.workspaces) {
    sel.append(el("option", { value: w.id }, `${w.name} (${w.id.split("/")[4]})`));
  }
  if (state.workspace) sel.value = state.workspace.id;
  sel.onchange = () => { pickWorkspace(sel.value); route(); };
}

let current = null;
let generation = 0;
async function route() {
  const gen = ++generation;
  const name = (location.hash.replace(/^#\/?/, "").split("?")[0]) || "logs";
  const load = blades[name] || blades.logs;
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === `#/${name}`) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.getElementById("nav").classList.remove("open");
  const mod = await load();
  if (gen !== generation) return; // a later navigation won
  if (current && current.unmount) current.unmount();
  current = mod;
  // Each blade mounts into its own view: a blade still loading when the
  // user moves on keeps appending to a view that is no longer shown.
  const view = el("div", { class: "view" });
  main.replaceChildren(view);
  try {
    await mod.mount(view, state);
  } catch (err) {
    view.append(el("p", { class: "error", role: "alert" }, String(err.message || err)));
  }
  if (gen === generation) main.focus({ preventScroll: true });
}

async function start() {
  window.addEventListener("custos:signin-required", () => showSignIn("Your session has ended. Sign in again."));
  const menu = document.getElementById("menu");
  menu.onclick = () => {
    const nav = document.getElementById("nav");
    nav.classList.toggle("open");
    menu.setAttribute("aria-expanded", String(nav.classList.contains("open")));
  };
  let session;
  try {
    session = await loadSession();
  } catch (err) {
    showSignIn(String(err.message || err));
    return;
  }
  if (!session) { showSignIn(); return; }
  setCSRF(session.csrfToken);
  state.user = session.user;
  document.getElementById("user").textContent = session.user.name || session.user.objectId || "";
  const so = document.getElementById("signout");
  so.hidden = false;
  so.onclick = async () => { await signOut(); location.assign("/portal/"); };
  try {
    state.workspaces = await loadWorkspaces();
  } catch (err) {
    state.workspaces = [];
  }
  pickWorkspace(sessionStorage.getItem("custos.workspace"));
  fillWorkspacePicker();
  document.getElementById("wspick").hidden = false;
  window.addEventListener("hashchange", route);
  await route();
}

start();
