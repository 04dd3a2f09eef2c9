package server

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"custos/internal/api"
)

// router dispatches on net/http ServeMux patterns, but matches literal path
// segments case-insensitively, as ARM does ("/resourceGroups/" and
// "/resourcegroups/" are the same path), while wildcard values keep the case
// the client sent (resource names are stored as created).
//
// It registers each pattern with its literal segments lower-cased on an inner
// ServeMux (which provides precedence and conflict detection), looks requests
// up with an ASCII-lower-cased copy of the path, and then fills the path values
// from the original path. ASCII lower-casing keeps every byte offset, so the
// segments of both paths line up. Safe for concurrent use after registration.
type router struct {
	mux      *http.ServeMux
	notFound http.Handler
}

type routeEntry struct {
	pattern string // as given by the API, e.g. "GET /subscriptions/{sub}"
	segs    []patternSeg
	h       http.Handler
}

type patternSeg struct {
	wildcard string // name of a {name} or {name...} segment; "" for a literal
	rest     bool   // {name...}
}

func newRouter(notFound http.Handler) *router {
	return &router{mux: http.NewServeMux(), notFound: notFound}
}

// handle registers h for pattern ("[METHOD ]/path"). Host patterns are not
// supported. It returns an error, instead of ServeMux's panic, for an invalid
// pattern or one that conflicts with an earlier registration.
func (rt *router) handle(pattern string, h http.Handler) (err error) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "", pattern
	}
	path = strings.TrimLeft(path, " \t")
	if !strings.HasPrefix(path, "/") {
		return fmt.Errorf("route %q: the path must start with /", pattern)
	}
	raw := strings.Split(path[1:], "/")
	segs := make([]patternSeg, len(raw))
	lowered := make([]string, len(raw))
	for i, s := range raw {
		if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
			name := s[1 : len(s)-1]
			if name == "$" {
				lowered[i] = s
				continue
			}
			if n, isRest := strings.CutSuffix(name, "..."); isRest {
				segs[i] = patternSeg{wildcard: n, rest: true}
			} else {
				segs[i] = patternSeg{wildcard: name}
			}
			lowered[i] = s
			continue
		}
		lowered[i] = asciiLower(s)
	}
	key := "/" + strings.Join(lowered, "/")
	if method != "" {
		key = method + " " + key
	}
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("route %q: %v", pattern, v)
		}
	}()
	rt.mux.Handle(key, routeMarker{&routeEntry{pattern: pattern, segs: segs, h: h}})
	return nil
}

// routeMarker is what the inner ServeMux holds: ServeMux.Handler returns it
// for a real match, and something else (a redirect, 404 or 405 handler)
// otherwise.
type routeMarker struct{ e *routeEntry }

func (routeMarker) ServeHTTP(http.ResponseWriter, *http.Request) {
	panic("BUG: router entries are dispatched by router.ServeHTTP")
}

func (rt *router) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	escaped := r.URL.EscapedPath()
	lr := *r
	lu := *r.URL
	lu.Path = asciiLower(r.URL.Path)
	lu.RawPath = asciiLower(r.URL.RawPath)
	lr.URL = &lu
	h, _ := rt.mux.Handler(&lr)
	m, ok := h.(routeMarker)
	if !ok {
		// A method mismatch answers 405 with the Allow header ServeMux
		// computed; no match, or a path that ServeMux would redirect to
		// its cleaned form, is an unknown path here.
		if allow, mismatch := methodMismatch(h, &lr); mismatch {
			w.Header().Set("Allow", allow)
			api.WriteError(w, r, nil, api.Errorf(http.StatusMethodNotAllowed, "MethodNotAllowed",
				"The method %s is not allowed on %s; allowed: %s.", r.Method, r.URL.Path, allow))
			return
		}
		rt.notFound.ServeHTTP(w, r)
		return
	}
	e := m.e
	if !e.setPathValues(r, escaped) {
		rt.notFound.ServeHTTP(w, r)
		return
	}
	r.Pattern = e.pattern
	if info := requestInfoFrom(r.Context()); info != nil {
		info.route = e.pattern
	}
	e.h.ServeHTTP(w, r)
}

// methodMismatch reports whether ServeMux's fallback handler h is its 405
// handler, and the methods it allows, by running h against a writer that only
// records the status and headers.
func methodMismatch(h http.Handler, r *http.Request) (allow string, ok bool) {
	var rec probeWriter
	h.ServeHTTP(&rec, r)
	return rec.header.Get("Allow"), rec.status == http.StatusMethodNotAllowed
}

type probeWriter struct {
	header http.Header
	status int
}

func (s *probeWriter) Header() http.Header {
	if s.header == nil {
		s.header = http.Header{}
	}
	return s.header
}
func (s *probeWriter) WriteHeader(code int) { s.status = code }
func (s *probeWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return len(b), nil
}

// setPathValues sets r's path values from the original escaped path.
func (e *routeEntry) setPathValues(r *http.Request, escaped string) bool {
	parts := strings.Split(strings.TrimPrefix(escaped, "/"), "/")
	for i, s := range e.segs {
		if s.wildcard == "" {
			continue
		}
		if i >= len(parts) {
			if s.rest {
				r.SetPathValue(s.wildcard, "")
				continue
			}
			return false
		}
		raw := parts[i]
		if s.rest {
			raw = strings.Join(parts[i:], "/")
		}
		v, err := url.PathUnescape(raw)
		if err != nil {
			return false
		}
		r.SetPathValue(s.wildcard, v)
	}
	return true
}

// asciiLower lower-cases ASCII letters only, keeping every byte offset.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if b[j] >= 'A' && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
