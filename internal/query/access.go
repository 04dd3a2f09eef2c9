package query

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"custos/internal/api"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// TableAuthorizer computes table-level access (table RBAC and ABAC row
// conditions) of a principal to a workspace. *rbac.Authorizer implements it.
type TableAuthorizer interface {
	TableAccess(ctx context.Context, p identity.Principal, workspaceScope rbac.Scope) (rbac.TableAccess, error)
}

var _ TableAuthorizer = (*rbac.Authorizer)(nil)

// access is what one query may read of one workspace: the tables handed to
// the engine (denied ones removed, so they are unknown to the query, as
// Azure answers), the row conditions compiled below every scan, and the
// denied tables for the permissions section.
type access struct {
	tables        map[string]store.Schema
	rowConditions map[string][]string
	denied        []string // sorted
}

// conditional reports whether row conditions restrict the query.
func (ac access) conditional() bool { return len(ac.rowConditions) > 0 }

// resolveAccess returns the tables and row conditions of ws that the caller
// of ctx may read. Without a TableAuthorizer every table is readable (only
// the workspace-level query action was checked by the route). It fails
// closed: an error computing access is an error of the query, never
// unrestricted access.
func (a *API) resolveAccess(ctx context.Context, ws Workspace) (access, error) {
	tables, err := a.opts.Workspaces.TableSchemas(ctx, ws.CustomerID)
	if err != nil {
		return access{}, fmt.Errorf("table schemas of %s: %w", ws.CustomerID, err)
	}
	if a.opts.TableAccess == nil {
		return access{tables: tables}, nil
	}
	p, ok := api.PrincipalFrom(ctx)
	if !ok || p.ObjectID == "" {
		return access{}, insufficientAccess()
	}
	ta, err := a.opts.TableAccess.TableAccess(ctx, p, rbac.Scope(ws.ResourceID))
	if err != nil {
		a.log.LogAttrs(ctx, slog.LevelError, "table access could not be computed; denying",
			slog.String("correlation_id", api.CorrelationIDFrom(ctx)), slog.Any("error", err))
		return access{}, insufficientAccess()
	}
	out := access{tables: make(map[string]store.Schema, len(tables)), rowConditions: map[string][]string{}}
	var cols []string // reused: TableAccess.Table reads the names and keeps none
	for name, schema := range tables {
		cols = cols[:0]
		for _, c := range schema {
			cols = append(cols, c.Name)
		}
		d := ta.Table(name, cols)
		if !d.Allowed {
			out.denied = append(out.denied, name)
			continue
		}
		out.tables[name] = schema
		if len(d.RowConditions) > 0 {
			out.rowConditions[name] = slices.Clone(d.RowConditions)
		}
	}
	sort.Strings(out.denied)
	return out, nil
}

func insufficientAccess() *Error {
	return &Error{Code: "InsufficientAccessError", Kind: api.KindForbidden,
		Message: "The provided credentials have insufficient access to perform the requested operation",
		Inner:   &api.InnerError{Code: "AuthorizationFailedError"}}
}

// permissionsSection renders the "permissions" member of a query response
// (Prefer: include-permissions=true): the workspace queried, with the
// tables the caller's permissions filtered out.
func permissionsSection(ws Workspace, denied []string) json.RawMessage {
	if denied == nil {
		denied = []string{}
	}
	type dataSource struct {
		ResourceID string   `json:"resourceId"`
		DenyTables []string `json:"denyTables"`
	}
	v := struct {
		Resources   []any        `json:"resources"`
		DataSources []dataSource `json:"dataSources"`
	}{Resources: []any{}, DataSources: []dataSource{{ResourceID: ws.ResourceID, DenyTables: denied}}}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("BUG: marshal permissions: %v", err))
	}
	return b
}
