package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"custos/internal/activity"
	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/store"
)

// serverActor is the catalog actor for changes the server makes itself.
var serverActor = catalog.Actor{ID: "custos", Type: "Application"}

// openActivity opens the activity log on the catalog's hash chain, with the
// file sink and the AzureActivity forwarding of the configuration, and
// makes the server's authorizer record every denial. It runs after the
// store is open and before the APIs are built.
func (s *Server) openActivity(ctx context.Context) error {
	fwd, err := s.activityWorkspace(ctx)
	if err != nil {
		return err
	}
	opts := activity.Options{
		Store: s.catalog, Keys: s.keys, OnAuthorizationChange: s.rbac.Invalidate,
		FilePath: s.cfg.Activity.File, Logger: s.log.With(slog.String("component", "activity")), Now: s.now,
	}
	if fwd != "" {
		opts.Forward, opts.ForwardWorkspaceID = s.store, fwd
	}
	alog, err := activity.New(ctx, opts)
	if err != nil {
		return fmt.Errorf("open activity log: %w", err)
	}
	s.activity = alog
	s.closers = append(s.closers, func() error {
		cctx, cancel := context.WithTimeout(context.Background(), s.cfg.Timeouts.Shutdown)
		defer cancel()
		return alog.Close(cctx)
	})
	s.authz = alog.AuditAuthorizer(s.rbac)
	return nil
}

// activityWorkspace resolves activity.workspace to the customer ID of the
// workspace that receives AzureActivity rows ("" when forwarding is off),
// and makes sure its AzureActivity table exists in the catalog and the
// store (workspaces created before the table was standard lack it).
func (s *Server) activityWorkspace(ctx context.Context) (string, error) {
	setting := strings.TrimSpace(s.cfg.Activity.Workspace)
	if strings.EqualFold(setting, ActivityWorkspaceNone) {
		return "", nil
	}
	ws := s.boot.Workspace
	if setting != "" {
		w, err := s.catalog.WorkspaceByResourceID(ctx, setting)
		if err != nil {
			return "", fmt.Errorf("activity.workspace %s: %w", setting, err)
		}
		ws = w
	}
	t, err := s.catalog.TableByCustomerID(ctx, ws.CustomerID, activity.AzureActivityTable)
	if errors.Is(err, catalog.ErrNotFound) {
		t, _, err = s.catalog.PutTable(ctx, ws.SubscriptionID, ws.ResourceGroup, ws.Name,
			catalog.TableSpec{Name: activity.AzureActivityTable}, catalog.Precondition{}, serverActor)
	}
	if err != nil {
		return "", fmt.Errorf("activity log table in workspace %s: %w", ws.ID(), err)
	}
	if err := s.store.EnsureTable(ctx, t.Ref(), t.StoreSchema(), t.EffectiveTotalRetentionInDays()); err != nil && !errors.Is(err, store.ErrKeyUnavailable) {
		return "", fmt.Errorf("ensure AzureActivity in workspace %s: %w", ws.ID(), err)
	}
	return ws.CustomerID, nil
}

// recordActivity wraps the control-plane (management-audience) routes so
// that their writes are recorded. Data-plane POSTs (ingestion, queries) are
// not control-plane writes and are left alone.
func (s *Server) recordActivity(routes []api.Route) []api.Route {
	if s.activity == nil {
		return routes
	}
	out := make([]api.Route, len(routes))
	for i, rt := range routes {
		if rt.Audience == identity.AudienceManagement {
			rt = s.activity.WrapRoutes([]api.Route{rt})[0]
		}
		out[i] = rt
	}
	return out
}

// maxTokenFormPeek bounds how much of a token request body is read ahead
// for the client_id (the token service itself allows 64 KiB).
const maxTokenFormPeek = 64<<10 + 1

// tokenClientID lets the activity log name the client of a failed token
// request. The token service reads the body itself and keeps the form to
// itself, so this layer, outside the activity middleware, reads the body
// ahead (bounded), puts only client_id into r.PostForm for the record, and
// hands the token service the body unchanged. The secret is never kept.
func tokenClientID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.ToLower(r.URL.Path)
		if r.Method != http.MethodPost || r.Body == nil ||
			!(strings.HasSuffix(p, "/oauth2/v2.0/token") || strings.HasSuffix(p, "/oauth2/token")) {
			next.ServeHTTP(w, r)
			return
		}
		head, err := io.ReadAll(io.LimitReader(r.Body, maxTokenFormPeek))
		r.Body = readCloser{Reader: io.MultiReader(bytes.NewReader(head), r.Body), Closer: r.Body}
		if err == nil && len(head) < maxTokenFormPeek {
			if vals, err := url.ParseQuery(string(head)); err == nil {
				if id := vals.Get("client_id"); id != "" {
					r.PostForm = url.Values{"client_id": {id}}
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

type readCloser struct {
	io.Reader
	io.Closer
}
