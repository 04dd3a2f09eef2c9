package rbac

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"custos/internal/identity"
)

// TableAccess says which tables of one workspace a principal may read, and
// under which row conditions. It is computed once per query by
// Authorizer.TableAccess and is then a pure value: safe for concurrent use.
//
// A table is readable when some role assignment of the principal, not
// expired, at the workspace or above it or at the table's own scope
// (".../workspaces/{ws}/tables/{table}") grants either
//   - the legacy action Microsoft.OperationalInsights/workspaces/query/{table}/read
//     (Microsoft.OperationalInsights/workspaces/query/Tables.Custom/read for
//     custom "_CL" tables; Reader's */read and Owner's * include it), or
//   - the data action Microsoft.OperationalInsights/workspaces/tables/data/read,
//
// and the assignment's ABAC condition (if any) does not deny it. Grants are
// additive: any unconditional grant wins over conditional ones, and the row
// predicates of several conditional grants are OR-ed.
type TableAccess struct {
	workspace string // scope as given
	rules     []tableRule
}

type tableRule struct {
	table string // "" for every table; else the table of a table-scoped assignment
	role  *compiledRole
	cond  *Condition // nil when unconditional
	id    string
}

// TableDecision is the answer for one table.
type TableDecision struct {
	Allowed bool
	// RowConditions are KQL predicates every row must satisfy (AND); nil
	// when the table is readable without restriction. Custos produces at
	// most one (the OR of the conditional grants).
	RowConditions []string
}

// legacyTableAction is the legacy per-table query action for a table.
func legacyTableAction(table string) string {
	return "microsoft.operationalinsights/workspaces/query/" + strings.ToLower(table) + "/read"
}

const customTablesAction = "microsoft.operationalinsights/workspaces/query/tables.custom/read"

// TableAccess returns the table-level access of p to the tables of the
// workspace at workspaceScope (a workspace resource ID). It reads the
// assignments once (through the cache); evaluating tables afterwards does no
// I/O. An error means no access.
func (a *Authorizer) TableAccess(ctx context.Context, p identity.Principal, workspaceScope Scope) (TableAccess, error) {
	if a == nil || a.store == nil {
		return TableAccess{}, ErrNoStore
	}
	if p.ObjectID == "" {
		return TableAccess{}, fmt.Errorf("%w: principal has no object ID", ErrInvalidRequest)
	}
	ws, ok := normalizeScope(workspaceScope)
	if !ok || ws == "/" {
		return TableAccess{}, fmt.Errorf("%w: malformed workspace scope", ErrInvalidRequest)
	}
	assignments, err := a.assignmentsFor(ctx, p)
	if err != nil {
		return TableAccess{}, fmt.Errorf("table access: %w", err)
	}
	now := a.now()
	ta := TableAccess{workspace: string(workspaceScope)}
	tablesPrefix := ws + "/tables/"
	for _, as := range assignments {
		if as.Expired(now) || (a.jit && as.scope == "/") {
			continue // just-in-time mode: root assignments read no data
		}
		var table string
		switch {
		case covers(as.scope, ws):
		case strings.HasPrefix(as.scope, tablesPrefix) && !strings.Contains(as.scope[len(tablesPrefix):], "/"):
			sc := strings.TrimSuffix(string(as.Scope), "/")
			table = sc[strings.LastIndexByte(sc, '/')+1:]
		default:
			continue
		}
		role, err := a.role(ctx, as.role)
		if err != nil {
			return TableAccess{}, fmt.Errorf("table access: %w", err)
		}
		if role == nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "role assignment names an unknown role definition",
				slog.String("assignment_id", as.ID), slog.String("role_definition_id", as.RoleDefinitionID))
			continue
		}
		r := tableRule{table: table, role: role, id: as.ID}
		if strings.TrimSpace(as.Condition) != "" {
			if r.cond, err = a.condition(as.Condition); err != nil {
				a.log.LogAttrs(ctx, slog.LevelWarn, "role assignment condition does not parse; assignment ignored",
					slog.String("assignment_id", as.ID), slog.Any("error", err))
				continue
			}
		}
		ta.rules = append(ta.rules, r)
	}
	return ta, nil
}

// Table decides access to one table. columns, when not nil, lists the
// table's columns: a conditional grant whose row predicate names a column the
// table does not have grants nothing (Azure: a condition on a non-existent
// column denies). With columns nil that check is left to the query engine,
// which must fail closed on an unknown column in a row condition.
func (t TableAccess) Table(name string, columns []string) TableDecision {
	if name == "" {
		return TableDecision{}
	}
	acts := []string{legacyTableAction(name), tableDataReadOp}
	if strings.HasSuffix(strings.ToLower(name), "_cl") {
		acts = append(acts, customTablesAction)
	}
	var preds []string
	for _, r := range t.rules {
		if r.table != "" && !strings.EqualFold(r.table, name) {
			continue
		}
		for _, op := range acts {
			data := op == tableDataReadOp
			if !r.role.allows(op, data) {
				continue
			}
			if r.cond == nil {
				return TableDecision{Allowed: true}
			}
			res := r.cond.root.residual(op, name)
			if res.kind == cConst {
				if res.val {
					return TableDecision{Allowed: true}
				}
				continue
			}
			if !data {
				continue // record attributes exist only for the data action
			}
			if columns != nil && !hasColumns(columns, res.columns(nil)) {
				continue
			}
			preds = append(preds, res.kql())
		}
	}
	if len(preds) == 0 {
		return TableDecision{}
	}
	return TableDecision{Allowed: true, RowConditions: []string{orPredicates(preds)}}
}

func hasColumns(have, need []string) bool {
	for _, n := range need {
		if !slices.Contains(have, n) {
			return false
		}
	}
	return true
}

// Filter splits tables into those p may read and those it may not, keeping
// the input order. denied is what `Prefer: include-permissions=true` reports
// as denyTables.
func (t TableAccess) Filter(tables []string) (allowed, denied []string) {
	for _, name := range tables {
		if t.Table(name, nil).Allowed {
			allowed = append(allowed, name)
		} else {
			denied = append(denied, name)
		}
	}
	return allowed, denied
}

// RowConditions returns the row conditions of the readable tables among
// schemas (table name → column names; nil columns skip the column check), in
// the shape engine.Request.RowConditions takes. Tables absent from the
// result are either unrestricted or denied; use Filter or Table to tell them
// apart, and never hand a denied table to the engine.
func (t TableAccess) RowConditions(schemas map[string][]string) map[string][]string {
	out := map[string][]string{}
	for name, cols := range schemas {
		if d := t.Table(name, cols); d.Allowed && len(d.RowConditions) > 0 {
			out[name] = d.RowConditions
		}
	}
	return out
}
