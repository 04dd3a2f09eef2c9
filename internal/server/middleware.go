package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"

	"custos/internal/api"
)

// Correlation headers, as ARM and the Log Analytics APIs use them.
const (
	headerCorrelationID   = "x-ms-correlation-request-id" // echoed, or generated
	headerRequestID       = "x-ms-request-id"             // generated per request
	headerClientRequestID = "x-ms-client-request-id"      // echoed when valid
)

// requestInfo is filled in by inner handlers for the outer request log:
// which route matched and who the caller was.
type requestInfo struct {
	route       string
	principalID string
}

type requestInfoKey struct{}

func requestInfoFrom(ctx context.Context) *requestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(*requestInfo)
	return ri
}

// statusRecorder records the status and size of a response. It passes
// Flush through and unwraps for http.ResponseController.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

func (w *statusRecorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// newID returns a random RFC 4122 version 4 UUID from crypto/rand.
func newID() string {
	id, err := newGUIDFrom(rand.Reader)
	if err != nil {
		panic("BUG: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return id
}

// newGUIDFrom returns a random RFC 4122 version 4 UUID read from r.
func newGUIDFrom(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("generate GUID: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
	return string(s[:]), nil
}

// validRequestID accepts client-supplied IDs that are safe to echo and log:
// at most 128 characters of letters, digits and ._:- (GUIDs and similar).
func validRequestID(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// observe is the outermost middleware: it assigns the correlation IDs,
// counts and times the request, and writes one structured log line per
// request. The log never carries the query string, headers or body, so no
// token, secret or query text reaches it.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := s.now()
		corr := r.Header.Get(headerCorrelationID)
		if !validRequestID(corr) {
			corr = newID()
		}
		h := w.Header()
		h.Set(headerCorrelationID, corr)
		h.Set(headerRequestID, newID())
		if cid := r.Header.Get(headerClientRequestID); validRequestID(cid) {
			h.Set(headerClientRequestID, cid)
		}
		info := &requestInfo{route: "unmatched"}
		ctx := api.WithCorrelationID(r.Context(), corr)
		ctx = context.WithValue(ctx, requestInfoKey{}, info)
		rec := &statusRecorder{ResponseWriter: w}
		s.metrics.begin()
		defer func() {
			d := s.now().Sub(start)
			status := rec.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.observe(r.Method, info.route, status, d)
			level := slog.LevelInfo
			if status >= 500 {
				level = slog.LevelWarn
			}
			s.log.LogAttrs(ctx, level, "request",
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.String("route", info.route),
				slog.Int("status", status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("duration", d),
				slog.String("principal_object_id", info.principalID),
				slog.String("correlation_id", corr),
				slog.String("remote_addr", r.RemoteAddr),
			)
		}()
		next.ServeHTTP(rec, r.WithContext(ctx))
	})
}

// recoverPanics turns a handler panic into a 500 in the Azure envelope (when
// nothing was written yet) and logs the stack. http.ErrAbortHandler keeps its
// meaning: abort the response silently.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if err, ok := v.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(v)
			}
			s.log.LogAttrs(r.Context(), slog.LevelError, "panic serving request",
				slog.String("correlation_id", api.CorrelationIDFrom(r.Context())),
				slog.String("path", r.URL.Path),
				slog.String("panic", fmt.Sprint(v)),
				slog.String("stack", string(debug.Stack())))
			if rec, ok := w.(*statusRecorder); ok && rec.status != 0 {
				// Headers are gone; the client sees a truncated response.
				panic(http.ErrAbortHandler)
			}
			api.WriteError(w, r, nil, errors.New("handler panic"))
		}()
		next.ServeHTTP(w, r)
	})
}

// securityHeaders sets the headers every response carries: HSTS (the server
// only speaks HTTPS), no MIME sniffing, no caching of API responses, and no
// framing or active content.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=31536000")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}

// limitBody rejects bodies whose declared length exceeds max and caps the
// rest with http.MaxBytesReader, so no handler can read more than max bytes.
func limitBody(max int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > max {
			api.WriteError(w, r, nil, api.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
				"The request body exceeds the limit of %d bytes.", max))
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, max)
		}
		next.ServeHTTP(w, r)
	})
}

// notFound answers unknown paths in the Azure envelope.
func notFound(w http.ResponseWriter, r *http.Request) {
	api.WriteError(w, r, nil, api.Errorf(http.StatusNotFound, "NotFound",
		"No API matches %s %s.", r.Method, r.URL.Path))
}

// healthz answers liveness probes without authentication. It says only
// whether the server is serving; nothing about tenants or data.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if s.stopping.Load() {
		api.WriteJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "stopping"})
		return
	}
	api.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}
