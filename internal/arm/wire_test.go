package arm_test

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"custos/internal/api"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

func TestCheckAPIVersion(t *testing.T) {
	for _, tc := range []struct{ query, code string }{
		{"", "MissingApiVersionParameter"},
		{"?api-version=", "MissingApiVersionParameter"},
		{"?api-version=2023-12-01", ""},
		{"?api-version=2021-02-01-preview", ""},
		{"?api-version=latest", "InvalidApiVersionParameter"},
		{"?api-version=" + strings.Repeat("x", 200), "InvalidApiVersionParameter"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/subscriptions/s"+tc.query, nil)
		err := arm.CheckAPIVersion(r)
		if tc.code == "" {
			if err != nil {
				t.Errorf("%q: unexpected error %v", tc.query, err)
			}
			continue
		}
		var ae *api.Error
		if !errors.As(err, &ae) {
			t.Fatalf("%q: error %v is not an *api.Error", tc.query, err)
		}
		if ae.Code != tc.code || ae.Status != http.StatusBadRequest {
			t.Errorf("%q: %d %q, want 400 %q", tc.query, ae.Status, ae.Code, tc.code)
		}
		if len(err.Error()) > 400 {
			t.Errorf("%q: message not truncated: %d bytes", tc.query, len(err.Error()))
		}
	}
}

func TestHandleWritesEnvelopeAndRunsBody(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ran := false
	h := arm.Handle(log, func(w http.ResponseWriter, r *http.Request) error {
		ran = true
		if r.URL.Query().Get("fail") != "" {
			return api.Errorf(http.StatusConflict, "Conflict", "busy")
		}
		arm.WritePut(w, true, `"e1"`, arm.List[string]{Value: []string{"a"}})
		return nil
	})

	w := httptest.NewRecorder()
	h(w, httptest.NewRequest(http.MethodPut, "/x", nil), rbac.Decision{})
	if ran || w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "MissingApiVersionParameter") {
		t.Fatalf("no api-version: ran=%v status=%d body=%s", ran, w.Code, w.Body)
	}

	w = httptest.NewRecorder()
	h(w, httptest.NewRequest(http.MethodPut, "/x?api-version=2023-01-01", nil), rbac.Decision{})
	if w.Code != http.StatusCreated || w.Header().Get("ETag") != `"e1"` {
		t.Fatalf("put: status=%d etag=%q", w.Code, w.Header().Get("ETag"))
	}
	var got arm.List[string]
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || len(got.Value) != 1 || got.Value[0] != "a" {
		t.Fatalf("put body %s: %v", w.Body, err)
	}

	w = httptest.NewRecorder()
	h(w, httptest.NewRequest(http.MethodPut, "/x?api-version=2023-01-01&fail=1", nil), rbac.Decision{})
	if w.Code != http.StatusConflict || !strings.Contains(w.Body.String(), `"Conflict"`) {
		t.Fatalf("failing body: status=%d body=%s", w.Code, w.Body)
	}

	for deleted, want := range map[bool]int{true: http.StatusOK, false: http.StatusNoContent} {
		w = httptest.NewRecorder()
		arm.WriteDelete(w, deleted)
		if w.Code != want {
			t.Errorf("WriteDelete(%v) = %d, want %d", deleted, w.Code, want)
		}
	}
}

func TestRequestPreconditionActorSystemData(t *testing.T) {
	r := httptest.NewRequest(http.MethodPut, "/x", nil)
	r.Header.Set("If-Match", `"a"`)
	r.Header.Set("If-None-Match", "*")
	if p := arm.RequestPrecondition(r); p != (catalog.Precondition{IfMatch: `"a"`, IfNoneMatch: "*"}) {
		t.Errorf("precondition = %+v", p)
	}
	if a := arm.RequestActor(r); a != (catalog.Actor{}) {
		t.Errorf("anonymous actor = %+v", a)
	}
	r = r.WithContext(api.WithPrincipal(r.Context(), identity.Principal{Kind: identity.KindUser, ObjectID: "o1", AppID: "a1"}))
	if a := arm.RequestActor(r); a != (catalog.Actor{ID: "o1", Type: "User"}) {
		t.Errorf("user actor = %+v", a)
	}

	at := time.Date(2024, 5, 6, 7, 8, 9, 123456700, time.FixedZone("x", 3600))
	sd := arm.NewSystemData(catalog.Audit{CreatedBy: "o1", CreatedByType: "User", CreatedAt: at})
	if sd.CreatedAt != "2024-05-06T06:08:09.1234567Z" || sd.LastModifiedAt != "" || sd.CreatedBy != "o1" {
		t.Errorf("systemData = %+v", sd)
	}
}
