package portal

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

// csrfHeader carries the session's CSRF token on state-changing calls.
const csrfHeader = "X-CSRF-Token"

// allowedPrefixes are the API paths each audience may reach through the
// proxy: the public ARM-shaped control plane and the query API. Nothing else
// (the token service, the portal itself, metrics) is reachable this way.
var allowedPrefixes = map[string][]string{
	"management": {"/subscriptions/", "/providers/"},
	"query":      {"/v1/"},
}

// serveAPI forwards /portal/api/{management|query}/<path> to <path> through
// the server's handler chain with the session's token for that audience.
func (p *Portal) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest := r.PathValue("rest")
	kind, target, _ := strings.Cut(rest, "/")
	target = "/" + target
	aud, ok := audiences[kind]
	if !ok || !allowedPath(kind, target) {
		writeError(w, http.StatusNotFound, "NotFound", "The portal does not forward this path.")
		return
	}
	// Browsers say where a request came from; only the portal's own pages
	// may call through it.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
		writeError(w, http.StatusForbidden, "CrossSiteRequestRefused", "The portal API accepts only same-origin requests.")
		return
	}
	s, _, ok := p.sessionOf(r)
	if !ok {
		writeError(w, http.StatusUnauthorized, "SignInRequired", "Sign in to the portal first.")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && !checkCSRF(s, r.Header.Get(csrfHeader)) {
		writeError(w, http.StatusForbidden, "CsrfTokenInvalid", "The request lacks the session's CSRF token.")
		return
	}
	tok, err := p.accessTokenFor(r, s, aud)
	if err != nil {
		if errors.Is(err, errSignInRequired) {
			writeError(w, http.StatusUnauthorized, "SignInRequired", err.Error())
			return
		}
		writeError(w, http.StatusBadGateway, "TokenUnavailable", "No token could be obtained for the API: "+err.Error())
		return
	}
	sub := r.Clone(r.Context())
	sub.URL.Path = target
	sub.URL.RawPath = ""
	sub.RequestURI = sub.URL.RequestURI()
	sub.Header.Del("Cookie")
	sub.Header.Del(csrfHeader)
	sub.Header.Set("Authorization", "Bearer "+string(tok))
	if sub.Header.Get("x-ms-app") == "" {
		sub.Header.Set("x-ms-app", "custos-portal")
	}
	p.opts.Backend().ServeHTTP(w, sub)
}

func allowedPath(kind, target string) bool {
	if strings.Contains(target, "/../") || strings.HasSuffix(target, "/..") || strings.Contains(target, "//") {
		return false
	}
	lower := strings.ToLower(target)
	for _, pre := range allowedPrefixes[kind] {
		if strings.HasPrefix(lower, pre) || lower == strings.TrimSuffix(pre, "/") {
			return true
		}
	}
	return false
}

// writeError answers in the Azure error envelope.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("x-ms-error-code", code)
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeMaybeGzip writes the embedded asset name (content b), gzip-compressed
// when the client accepts it; compressed copies are cached, since embedded
// assets never change while the process runs.
func (p *Portal) writeMaybeGzip(w http.ResponseWriter, r *http.Request, name string, b []byte) {
	w.Header().Add("Vary", "Accept-Encoding")
	if len(b) < 1024 || !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		_, _ = w.Write(b)
		return
	}
	z, ok := p.gzipped.Load(name)
	if !ok {
		var buf strings.Builder
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		z, _ = p.gzipped.LoadOrStore(name, []byte(buf.String()))
	}
	w.Header().Set("Content-Encoding", "gzip")
	_, _ = w.Write(z.([]byte))
}
