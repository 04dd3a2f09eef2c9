package arm

import (
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/rbac"
)

// This file holds the ARM request and response conventions shared by every
// resource provider served under /subscriptions/... — this package's and
// internal/alert's (Microsoft.Insights alert resources).

// apiVersionRE accepts ARM's date versions: YYYY-MM-DD with an optional
// "-preview"-style suffix. Unknown dates are accepted, as the resources'
// shapes here do not change between versions.
var apiVersionRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}(-[A-Za-z]+)?$`)

// CheckAPIVersion returns an *api.Error (400 MissingApiVersionParameter or
// InvalidApiVersionParameter) unless the request carries an ARM
// api-version query parameter.
func CheckAPIVersion(r *http.Request) error {
	vs, ok := r.URL.Query()["api-version"]
	if !ok || len(vs) == 0 || vs[0] == "" {
		return api.Errorf(http.StatusBadRequest, "MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.")
	}
	if !apiVersionRE.MatchString(vs[0]) {
		v := vs[0]
		if len(v) > 64 {
			v = v[:64] + "..."
		}
		return api.Errorf(http.StatusBadRequest, "InvalidApiVersionParameter",
			"The api-version '%s' is invalid. The supported versions are dates in the form 'YYYY-MM-DD', optionally followed by '-preview'.", v)
	}
	return nil
}

// Handle adapts an ARM route body to an api.HandlerFunc: it checks the
// api-version first and writes any returned error in the Azure envelope,
// logging through log.
func Handle(log *slog.Logger, h func(w http.ResponseWriter, r *http.Request) error) api.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
		err := CheckAPIVersion(r)
		if err == nil {
			err = h(w, r)
		}
		if err != nil {
			api.WriteError(w, r, log, err)
		}
	}
}

// RequestPrecondition reads If-Match and If-None-Match.
func RequestPrecondition(r *http.Request) catalog.Precondition {
	return catalog.Precondition{IfMatch: r.Header.Get("If-Match"), IfNoneMatch: r.Header.Get("If-None-Match")}
}

// RequestActor is the authenticated caller, for systemData; the zero Actor
// when the request carries no principal.
func RequestActor(r *http.Request) catalog.Actor {
	p, ok := api.PrincipalFrom(r.Context())
	if !ok {
		return catalog.Actor{}
	}
	typ := "Application"
	switch p.Kind {
	case identity.KindUser:
		typ = "User"
	case identity.KindManagedIdentity:
		typ = "ManagedIdentity"
	}
	id := p.ObjectID
	if id == "" {
		id = p.AppID
	}
	return catalog.Actor{ID: id, Type: typ}
}

// SystemData is ARM's resource metadata block.
type SystemData struct {
	CreatedBy          string `json:"createdBy,omitempty"`
	CreatedByType      string `json:"createdByType,omitempty"`
	CreatedAt          string `json:"createdAt,omitempty"`
	LastModifiedBy     string `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string `json:"lastModifiedByType,omitempty"`
	LastModifiedAt     string `json:"lastModifiedAt,omitempty"`
}

// NewSystemData is the systemData block of a catalog audit record.
func NewSystemData(a catalog.Audit) *SystemData {
	return &SystemData{
		CreatedBy: a.CreatedBy, CreatedByType: a.CreatedByType, CreatedAt: WireTime(a.CreatedAt),
		LastModifiedBy: a.ModifiedBy, LastModifiedByType: a.ModifiedByType, LastModifiedAt: WireTime(a.ModifiedAt),
	}
}

// WireTime formats t as ARM does (UTC, 7 fractional digits); "" for the zero
// time.
func WireTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.0000000Z")
}

// List is ARM's collection envelope.
type List[T any] struct {
	Value []T `json:"value"`
}

// WriteJSON writes v with status and, when etag is set, an ETag header.
func WriteJSON(w http.ResponseWriter, status int, etag string, v any) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	api.WriteJSON(w, status, v)
}

// WritePut answers a PUT: 201 when created, 200 when updated.
func WritePut(w http.ResponseWriter, created bool, etag string, v any) {
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	WriteJSON(w, status, etag, v)
}

// WriteDelete answers a DELETE: 200 when something was deleted, 204 when
// there was nothing to delete, as ARM does.
func WriteDelete(w http.ResponseWriter, deleted bool) {
	if deleted {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
