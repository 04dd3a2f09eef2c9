package arm

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/kql"
	"custos/internal/rbac"
)

// This file serves Microsoft.OperationalInsights/workspaces/savedSearches
// (api-version 2020-08-01): saved queries, and with a functionAlias,
// workspace functions that queries call by name. The query text is customer
// content: it is sealed under the workspace's key before the catalog stores
// it, and opened only to answer GET and to run the function.

const (
	pSavedSearches = pWorkspace + "/savedSearches"
	pSavedSearch   = pSavedSearches + "/{savedSearchId}"

	actionSavedSearchRead   rbac.Action = "Microsoft.OperationalInsights/workspaces/savedSearches/read"
	actionSavedSearchWrite  rbac.Action = "Microsoft.OperationalInsights/workspaces/savedSearches/write"
	actionSavedSearchDelete rbac.Action = "Microsoft.OperationalInsights/workspaces/savedSearches/delete"
)

// ContentSealer seals and opens customer content under a workspace's key;
// *store.DB implements it.
type ContentSealer interface {
	SealWorkspaceContent(ctx context.Context, workspaceID string, plaintext, aad []byte) ([]byte, error)
	OpenWorkspaceContent(ctx context.Context, workspaceID string, sealed, aad []byte) ([]byte, error)
}

// SavedSearchOptions configure the saved search API.
type SavedSearchOptions struct {
	Catalog *catalog.DB   // required
	Content ContentSealer // required: seals the queries
	Logger  *slog.Logger  // nil discards
	// MaxBodyBytes bounds request bodies; 0 means api.DefaultMaxBodyBytes.
	MaxBodyBytes int64
}

// SavedSearches serves the savedSearches resource. Safe for concurrent use.
type SavedSearches struct {
	opts SavedSearchOptions
	log  *slog.Logger
}

// NewSavedSearches returns the saved search API. It panics without a
// catalog or a sealer, a wiring bug.
func NewSavedSearches(opts SavedSearchOptions) *SavedSearches {
	if opts.Catalog == nil || opts.Content == nil {
		panic("BUG: arm.NewSavedSearches needs a Catalog and a Content sealer")
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &SavedSearches{opts: opts, log: log}
}

// Routes returns the savedSearches routes, authorized on the workspace.
func (s *SavedSearches) Routes() []api.Route {
	r := func(method, pattern string, act rbac.Action, h func(http.ResponseWriter, *http.Request) error) api.Route {
		return api.Route{Method: method, Pattern: pattern, Audience: identity.AudienceManagement, Action: act,
			Scope: workspaceScope, Handler: Handle(s.log, h)}
	}
	return []api.Route{
		r(http.MethodGet, pSavedSearches, actionSavedSearchRead, s.list),
		r(http.MethodGet, pSavedSearch, actionSavedSearchRead, s.get),
		r(http.MethodPut, pSavedSearch, actionSavedSearchWrite, s.put),
		r(http.MethodDelete, pSavedSearch, actionSavedSearchDelete, s.delete),
	}
}

type savedSearchTag struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type savedSearchProps struct {
	Category           string           `json:"category"`
	DisplayName        string           `json:"displayName"`
	Query              string           `json:"query"`
	FunctionAlias      string           `json:"functionAlias,omitempty"`
	FunctionParameters string           `json:"functionParameters,omitempty"`
	Version            int64            `json:"version,omitempty"`
	Tags               []savedSearchTag `json:"tags,omitempty"`
}

type savedSearchWire struct {
	ID         string           `json:"id,omitempty"`
	Name       string           `json:"name,omitempty"`
	Type       string           `json:"type,omitempty"`
	ETag       string           `json:"etag,omitempty"`
	Properties savedSearchProps `json:"properties"`
	SystemData *SystemData      `json:"systemData,omitempty"`
}

func workspaceIDOf(r *http.Request) string {
	return catalog.WorkspaceResourceID(r.PathValue("subscriptionId"), r.PathValue("resourceGroupName"), r.PathValue("workspaceName"))
}

// wire renders a saved search, opening its query.
func (s *SavedSearches) wire(ctx context.Context, ss catalog.SavedSearch) (savedSearchWire, error) {
	q, err := s.opts.Content.OpenWorkspaceContent(ctx, ss.Workspace.CustomerID, ss.QuerySealed, catalog.SavedSearchAAD(ss.Name))
	if err != nil {
		return savedSearchWire{}, fmt.Errorf("open saved search %s: %w", ss.Name, err)
	}
	out := savedSearchWire{
		ID: ss.ID(), Name: ss.Name, Type: catalog.TypeSavedSearch, ETag: ss.ETag,
		Properties: savedSearchProps{Category: ss.Category, DisplayName: ss.DisplayName, Query: string(q),
			FunctionAlias: ss.FunctionAlias, FunctionParameters: ss.FunctionParameters, Version: ss.Version},
		SystemData: NewSystemData(ss.Audit),
	}
	for _, t := range ss.Tags {
		out.Properties.Tags = append(out.Properties.Tags, savedSearchTag(t))
	}
	return out, nil
}

func (s *SavedSearches) list(w http.ResponseWriter, r *http.Request) error {
	all, err := s.opts.Catalog.SavedSearches(r.Context(), workspaceIDOf(r))
	if err != nil {
		return err
	}
	out := List[savedSearchWire]{Value: []savedSearchWire{}}
	for _, ss := range all {
		v, err := s.wire(r.Context(), ss)
		if err != nil {
			return err
		}
		out.Value = append(out.Value, v)
	}
	WriteJSON(w, http.StatusOK, "", out)
	return nil
}

func (s *SavedSearches) get(w http.ResponseWriter, r *http.Request) error {
	ss, err := s.opts.Catalog.SavedSearch(r.Context(), workspaceIDOf(r), r.PathValue("savedSearchId"))
	if err != nil {
		return err
	}
	v, err := s.wire(r.Context(), ss)
	if err != nil {
		return err
	}
	WriteJSON(w, http.StatusOK, ss.ETag, v)
	return nil
}

// maxSavedSearchQueryBytes bounds a saved search's query text.
const maxSavedSearchQueryBytes = 128 << 10

func (s *SavedSearches) put(w http.ResponseWriter, r *http.Request) error {
	var req savedSearchWire
	if err := api.DecodeJSON(r, &req, s.opts.MaxBodyBytes); err != nil {
		return err
	}
	name := r.PathValue("savedSearchId")
	p := req.Properties
	if strings.TrimSpace(p.Query) == "" {
		return catalog.Invalid("InvalidParameter", "properties.query", "The property 'query' is required.")
	}
	if len(p.Query) > maxSavedSearchQueryBytes {
		return catalog.Invalid("InvalidParameter", "properties.query", "The query is longer than %d bytes.", maxSavedSearchQueryBytes)
	}
	// The query must parse; as a function, with its parameters. Names are
	// resolved when the function is called, with the caller's access.
	if p.FunctionAlias != "" {
		if _, err := kql.Parse("let __f = (" + p.FunctionParameters + ") {\n" + p.Query + "\n};\nprint 1"); err != nil {
			return catalog.Invalid("InvalidParameter", "properties.query", "The function does not parse: %v", err)
		}
	} else if _, err := kql.Parse(p.Query); err != nil {
		return catalog.Invalid("InvalidParameter", "properties.query", "The query does not parse: %v", err)
	}
	ws, err := s.opts.Catalog.WorkspaceByResourceID(r.Context(), workspaceIDOf(r))
	if err != nil {
		return err
	}
	sealed, err := s.opts.Content.SealWorkspaceContent(r.Context(), ws.CustomerID, []byte(p.Query), catalog.SavedSearchAAD(name))
	if err != nil {
		return fmt.Errorf("seal saved search %s: %w", name, err)
	}
	version := p.Version
	if version == 0 {
		version = 2
	}
	ss := catalog.SavedSearch{Name: name, Category: p.Category, DisplayName: p.DisplayName, QuerySealed: sealed,
		FunctionAlias: p.FunctionAlias, FunctionParameters: p.FunctionParameters, Version: version, ETag: req.ETag}
	for _, t := range p.Tags {
		ss.Tags = append(ss.Tags, catalog.SavedSearchTag(t))
	}
	out, created, err := s.opts.Catalog.PutSavedSearch(r.Context(), ws.ID(), ss, RequestPrecondition(r), RequestActor(r))
	if err != nil {
		return err
	}
	v, err := s.wire(r.Context(), out)
	if err != nil {
		return err
	}
	WritePut(w, created, out.ETag, v)
	return nil
}

func (s *SavedSearches) delete(w http.ResponseWriter, r *http.Request) error {
	deleted, err := s.opts.Catalog.DeleteSavedSearch(r.Context(), workspaceIDOf(r), r.PathValue("savedSearchId"), RequestPrecondition(r))
	if err != nil {
		return err
	}
	WriteDelete(w, deleted)
	return nil
}
