// api.js: calls the public Custos APIs through the portal's same-origin
// proxy. The browser holds no token: the session cookie (HttpOnly) names a
// server-side session, and state-changing calls carry its CSRF token.

let csrf = "";

export function setCSRF(token) { csrf = token; }

export class APIError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status; this.code = code; this.body = body;
  }
}

async function call(kind, method, path, body, opts = {}) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrf;
  Object.assign(headers, opts.headers || {});
  const resp = await fetch(`/portal/api/${kind}${path}`, {
    method, headers, credentials: "same-origin", signal: opts.signal,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (resp.status === 401) {
    const err = new APIError(401, "SignInRequired", "Your session has ended. Sign in again.");
    window.dispatchEvent(new CustomEvent("custos:signin-required"));
    throw err;
  }
  const text = await resp.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = text; } }
  if (!resp.ok) {
    const e = (data && data.error) || {};
    throw new APIError(resp.status, e.code || String(resp.status), e.message || resp.statusText, data);
  }
  // opts.withLocation: an asynchronous operation's answer (202) names its
  // status resource in Location.
  if (opts.withLocation) return { data, location: resp.headers.get("Location") || "" };
  return data;
}

export const arm = {
  get: (path, opts) => call("management", "GET", path, undefined, opts),
  put: (path, body, opts) => call("management", "PUT", path, body, opts),
  post: (path, body, opts) => call("management", "POST", path, body, opts),
  patch: (path, body, opts) => call("management", "PATCH", path, body, opts),
  del: (path, opts) => call("management", "DELETE", path, undefined, opts),
};

export const logs = {
  query: (workspaceId, body, opts) => call("query", "POST", `/v1/workspaces/${encodeURIComponent(workspaceId)}/query`, body, opts),
  metadata: (workspaceId, opts) => call("query", "GET", `/v1/workspaces/${encodeURIComponent(workspaceId)}/metadata`, undefined, opts),
};

// withVersion appends the api-version query parameter ARM requires.
export function v(path, version) {
  return path + (path.includes("?") ? "&" : "?") + "api-version=" + version;
}

// listAll follows nextLink paging of an ARM list.
export async function listAll(path, opts) {
  const out = [];
  let next = path;
  for (let i = 0; next && i < 50; i++) {
    const page = await arm.get(next, opts);
    out.push(...((page && page.value) || []));
    next = page && page.nextLink ? new URL(page.nextLink, location.origin).pathname + new URL(page.nextLink, location.origin).search : "";
  }
  return out;
}

export async function signOut() {
  await fetch("/portal/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
}
