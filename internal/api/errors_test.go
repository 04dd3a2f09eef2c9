package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"custos/internal/store"
)

// A tampered block fails the request with an error that names the part and
// never the file path; the log gets the whole error.
func TestCorruptionErrorNamesThePart(t *testing.T) {
	ce := &store.CorruptionError{Path: "/data/store/ws/T/part-17", Part: "part-17", Block: 2, Column: "Message", Err: errors.New("message authentication failed")}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/workspaces/x/query", nil)
	var logged strings.Builder
	log := slogTo(&logged)
	WriteError(rec, req, log, fmt.Errorf("run query: %w", ce))
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("x-ms-error-code") != "DataIntegrityError" {
		t.Fatalf("got %d %q; want 500 DataIntegrityError", rec.Code, rec.Header().Get("x-ms-error-code"))
	}
	body := rec.Body.String()
	if !strings.Contains(body, "part part-17 (column Message)") || strings.Contains(body, "/data/store") {
		t.Fatalf("body %s; want the part named and no path", body)
	}
	if !strings.Contains(logged.String(), "/data/store/ws/T/part-17") {
		t.Fatalf("log %q lacks the full error", logged.String())
	}
}

func slogTo(w *strings.Builder) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
