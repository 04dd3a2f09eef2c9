package api

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"syscall"
	"testing"
)

// A full or over-quota filesystem anywhere in the chain is a retryable 503
// InsufficientStorage with Retry-After, never a generic 500.
func TestToErrorFullDisk(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EDQUOT} {
		err := fmt.Errorf("commit ws/T: write WAL segment: %w", &os.PathError{Op: "write", Path: "/data/x.wal", Err: errno})
		e := ToError(err)
		if e.Status != http.StatusServiceUnavailable || e.Code != CodeInsufficientStorage {
			t.Fatalf("%v: HTTP %d %s; want 503 %s", errno, e.Status, e.Code, CodeInsufficientStorage)
		}
		rec := httptest.NewRecorder()
		WriteError(rec, httptest.NewRequest(http.MethodPost, "/x", nil), nil, err)
		if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || rec.Header().Get("x-ms-error-code") != CodeInsufficientStorage {
			t.Fatalf("%v: wrote HTTP %d, Retry-After %q, code %q", errno, rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("x-ms-error-code"))
		}
		if body := rec.Body.String(); len(body) == 0 || strings.Contains(body, "/data/x.wal") {
			t.Fatalf("%v: body %q is empty or leaks the path", errno, body)
		}
	}
}
