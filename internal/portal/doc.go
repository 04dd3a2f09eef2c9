// Package portal serves Custos's web portal: the Azure portal's monitoring
// blades (Logs, Tables, Alerts, Data collection, Access control, Activity
// log, Encryption and network) as static assets embedded in the binary, plus
// the small backend a browser needs to use the public APIs safely.
//
// The backend is a "backend for frontend": the browser never holds a token.
// Sign-in is the authorization code flow with PKCE (S256) against the
// Custos token service (or, through it, a configured external provider); the
// tokens stay on the server in a bounded session store, and the browser gets
// only an opaque session cookie (__Host- prefixed, HttpOnly, Secure,
// SameSite=Strict). The page calls /portal/api/{management|query}/..., which
// the portal forwards, with the session's bearer token for that audience,
// through the server's own handler chain — the very routes, authentication
// and RBAC that SDK calls meet. State-changing calls need the session's CSRF
// token in X-CSRF-Token, and every page is served under a strict Content
// Security Policy with no inline script.
package portal
