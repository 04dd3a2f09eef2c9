package rbac

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"custos/internal/identity"
)

// Errors returned by Authorize. Any error means deny.
var (
	// ErrNoStore is returned when the Authorizer was built without an AssignmentStore.
	ErrNoStore = errors.New("rbac: no assignment store configured")
	// ErrInvalidRequest is returned for a principal without an object ID, a
	// malformed action or a malformed scope.
	ErrInvalidRequest = errors.New("rbac: invalid authorization request")
)

// DefaultCacheTTL is how long the assignments of one principal, and the
// custom role definitions, are reused before they are read from the store
// again (unless Invalidate is called). It bounds how long a role assignment,
// role definition or group membership change takes to reach every decision:
// under 1 s, with room for the catalog read (bench/authz measures it).
const DefaultCacheTTL = 900 * time.Millisecond

// maxCacheEntries bounds the per-principal assignment cache.
const maxCacheEntries = 16384

// maxConditionCache bounds the parsed-condition cache.
const maxConditionCache = 4096

// Options configures an Authorizer. Zero fields take the documented defaults.
type Options struct {
	// Store holds the role assignments. Required: without it every request
	// is denied. If it also implements DetailedAssignmentStore, assignments
	// are read through that (expiry is enforced); if it implements
	// RoleStore, custom role definitions are loaded from it.
	Store AssignmentStore
	// Roles are custom role definitions in addition to the built-in ones and
	// those of a RoleStore. A custom role cannot replace a built-in role's ID.
	Roles []RoleDefinition
	// CacheTTL bounds how stale cached assignments and custom roles may be.
	// Zero means DefaultCacheTTL; negative disables the cache.
	CacheTTL time.Duration
	// Logger receives warnings about unusable assignments. Nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// JustInTime, when set, makes role assignments at the root scope "/"
	// grant no access to log data and no right to approve access requests
	// (see JITRestricted): administrators of the installation then read a
	// workspace's data only through an approved, expiring access request.
	JustInTime bool
}

// GroupStore is implemented by stores that hold group memberships (the
// catalog does). When the Authorizer's Store implements it, the
// assignments of every group a principal belongs to, directly or through
// nested groups, apply to the principal; memberships are cached like
// assignments, so a change takes effect within CacheTTL.
type GroupStore interface {
	TransitiveGroups(ctx context.Context, principalIDs []string) ([]string, error)
}

// Authorizer answers authorization requests against Azure-style role
// assignments. It is safe for concurrent use.
type Authorizer struct {
	store    AssignmentStore
	detailed DetailedAssignmentStore // nil when the store does not persist every field
	roleSrc  RoleStore               // nil when custom roles come only from Options.Roles
	groups   GroupStore              // nil when the store has no group memberships
	jit      bool
	static   map[string]*compiledRole // lower-case GUID → built-in or Options.Roles role; immutable after New
	ttl      time.Duration
	log      *slog.Logger
	now      func() time.Time

	mu     sync.Mutex // guards cache, gen, custom, conds
	cache  map[string]cacheEntry
	gen    uint64 // bumped by Invalidate so in-flight loads do not store stale results
	custom *customRoles
	conds  map[string]*Condition
}

// customRoles is one load of the RoleStore's definitions.
type customRoles struct {
	byID    map[string]*compiledRole
	expires time.Time
}

type cacheEntry struct {
	assignments []assignment
	expires     time.Time
}

// assignment is a RoleAssignment with its scope normalized for matching.
type assignment struct {
	RoleAssignment
	scope string // normalized, lower-case
	role  string // lower-case role GUID
}

// New returns an Authorizer over opts.Store.
func New(opts Options) *Authorizer {
	a := &Authorizer{
		store:  opts.Store,
		static: map[string]*compiledRole{},
		ttl:    opts.CacheTTL,
		log:    opts.Logger,
		now:    opts.Now,
		cache:  map[string]cacheEntry{},
		conds:  map[string]*Condition{},
	}
	if d, ok := opts.Store.(DetailedAssignmentStore); ok {
		a.detailed = d
	}
	if rs, ok := opts.Store.(RoleStore); ok {
		a.roleSrc = rs
	}
	if gs, ok := opts.Store.(GroupStore); ok {
		a.groups = gs
	}
	a.jit = opts.JustInTime
	if a.ttl == 0 {
		a.ttl = DefaultCacheTTL
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	for _, d := range opts.Roles {
		id := roleGUID(d.ID)
		if id == "" {
			continue
		}
		a.static[id] = compileRole(d)
	}
	for _, d := range builtinRoles() {
		a.static[strings.ToLower(d.ID)] = compileRole(d)
	}
	return a
}

// Invalidate drops every cached assignment and custom role, so the next
// Authorize reads the store. Call it after changing role assignments or
// role definitions.
func (a *Authorizer) Invalidate() {
	a.mu.Lock()
	a.cache = map[string]cacheEntry{}
	a.custom = nil
	a.gen++
	a.mu.Unlock()
}

// RoleDefinition returns the built-in role, or the custom role given in
// Options.Roles, with the given ID, which may be a bare GUID or a role
// definition resource ID. Custom roles held by a RoleStore are not consulted;
// use LookupRole for those.
func (a *Authorizer) RoleDefinition(id string) (RoleDefinition, bool) {
	r, ok := a.static[roleGUID(id)]
	if !ok {
		return RoleDefinition{}, false
	}
	return r.def, true
}

// LookupRole returns the role (built-in, Options.Roles or RoleStore) with the
// given ID. ok is false when there is none; an error means the RoleStore
// could not be read.
func (a *Authorizer) LookupRole(ctx context.Context, id string) (RoleDefinition, bool, error) {
	r, err := a.role(ctx, roleGUID(id))
	if err != nil || r == nil {
		return RoleDefinition{}, false, err
	}
	return r.def, true, nil
}

// role returns the compiled role with the lower-case GUID id, or nil.
func (a *Authorizer) role(ctx context.Context, id string) (*compiledRole, error) {
	if r, ok := a.static[id]; ok {
		return r, nil
	}
	if a.roleSrc == nil {
		return nil, nil
	}
	now := a.now()
	a.mu.Lock()
	cur, gen := a.custom, a.gen
	a.mu.Unlock()
	if cur == nil || (a.ttl > 0 && !now.Before(cur.expires)) || a.ttl < 0 {
		defs, err := a.roleSrc.CustomRoleDefinitions(ctx)
		if err != nil {
			return nil, fmt.Errorf("read custom role definitions: %w", err)
		}
		cur = &customRoles{byID: make(map[string]*compiledRole, len(defs)), expires: now.Add(a.ttl)}
		for _, d := range defs {
			g := roleGUID(d.ID)
			if _, builtin := a.static[g]; builtin || g == "" {
				continue // a stored role never replaces a built-in one
			}
			cur.byID[g] = compileRole(d)
		}
		if a.ttl > 0 {
			a.mu.Lock()
			if a.gen == gen {
				a.custom = cur
			}
			a.mu.Unlock()
		}
	}
	return cur.byID[id], nil
}

// condition returns the parsed condition text, from a bounded cache.
func (a *Authorizer) condition(src string) (*Condition, error) {
	a.mu.Lock()
	c, ok := a.conds[src]
	a.mu.Unlock()
	if ok {
		return c, nil
	}
	c, err := ParseCondition(src)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	if len(a.conds) >= maxConditionCache {
		a.conds = map[string]*Condition{}
	}
	a.conds[src] = c
	a.mu.Unlock()
	return c, nil
}

// Authorize decides whether p may perform act at scope. It is the only
// authorization check in Custos. It denies by default: the result is allowed
// only when an assignment to p (or to one of p's groups) at scope or above it,
// not expired, grants a role whose permissions include act, and the
// assignment's condition (if any) holds. A non-nil error means deny; the
// returned Decision then has Allowed false.
//
// Conditions: an ActionMatches guard is decided by act. Resource attributes
// exist only for the table data action
// (Microsoft.OperationalInsights/workspaces/tables/data/read); for it, a
// condition that still depends on the table name or on record columns allows
// the request with Decision.RowConditions: keyed by the table name when scope
// is a table (".../workspaces/{ws}/tables/{t}"), else by "*" (every table,
// with the table name tested through the Type column). Several conditional
// grants are OR-ed into one predicate per key. For any other action, a
// condition that depends on attributes grants nothing (fail closed).
func (a *Authorizer) Authorize(ctx context.Context, p identity.Principal, act Action, scope Scope) (Decision, error) {
	if a == nil || a.store == nil {
		return Decision{Reason: "no assignment store"}, ErrNoStore
	}
	if p.ObjectID == "" {
		return Decision{Reason: "principal has no object ID"}, fmt.Errorf("%w: principal has no object ID", ErrInvalidRequest)
	}
	if !act.valid() {
		return Decision{Reason: "malformed action"}, fmt.Errorf("%w: malformed action %q", ErrInvalidRequest, act)
	}
	target, ok := normalizeScope(scope)
	if !ok {
		return Decision{Reason: "malformed scope"}, fmt.Errorf("%w: malformed scope", ErrInvalidRequest)
	}
	assignments, err := a.assignmentsFor(ctx, p)
	if err != nil {
		return Decision{Reason: "role assignments unavailable"}, fmt.Errorf("authorize %s: %w", act, err)
	}
	op := strings.ToLower(string(act))
	data := act.IsData()
	table, key := "", "*"
	if t, ok := tableOfScope(string(scope)); ok {
		table, key = t, t
	}
	now := a.now()
	var preds []string
	var reasons []string
	restricted := a.jit && JITRestricted(act)
	for _, as := range assignments {
		if !covers(as.scope, target) || as.Expired(now) {
			continue
		}
		if restricted && as.scope == "/" {
			continue // just-in-time mode: root assignments grant no data access
		}
		role, err := a.role(ctx, as.role)
		if err != nil {
			return Decision{Reason: "role definitions unavailable"}, fmt.Errorf("authorize %s: %w", act, err)
		}
		if role == nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "role assignment names an unknown role definition",
				slog.String("assignment_id", as.ID), slog.String("role_definition_id", as.RoleDefinitionID))
			continue
		}
		if !role.allows(op, data) {
			continue
		}
		grant := fmt.Sprintf("role %q (%s) assigned at %s to %s by %s grants %s",
			role.def.Name, role.def.ID, as.Scope, as.PrincipalID, as.ID, act)
		if strings.TrimSpace(as.Condition) == "" {
			return Decision{Allowed: true, Reason: grant}, nil
		}
		cond, err := a.condition(as.Condition)
		if err != nil {
			a.log.LogAttrs(ctx, slog.LevelWarn, "role assignment condition does not parse; assignment ignored",
				slog.String("assignment_id", as.ID), slog.Any("error", err))
			continue
		}
		pred, ok := cond.Predicate(act, table)
		switch {
		case !ok:
			continue
		case pred == "":
			return Decision{Allowed: true, Reason: grant + " (condition holds)"}, nil
		case op != tableDataReadOp:
			a.log.LogAttrs(ctx, slog.LevelDebug, "condition depends on attributes the action does not have; assignment grants nothing",
				slog.String("assignment_id", as.ID), slog.String("action", string(act)))
			continue
		}
		preds = append(preds, pred)
		reasons = append(reasons, grant+" under condition")
	}
	if len(preds) > 0 {
		return Decision{
			Allowed:       true,
			Reason:        strings.Join(reasons, "; "),
			RowConditions: map[string][]string{key: {orPredicates(preds)}},
		}, nil
	}
	return Decision{Reason: fmt.Sprintf("no role assignment grants %s at %s", act, scope)}, nil
}

// tableDataReadOp is ActionTableDataRead lower-cased.
var tableDataReadOp = strings.ToLower(string(ActionTableDataRead))

// orPredicates joins KQL predicates with "or".
func orPredicates(preds []string) string {
	preds = slices.Compact(slices.Sorted(slices.Values(preds)))
	if len(preds) == 1 {
		return preds[0]
	}
	return "(" + strings.Join(preds, ") or (") + ")"
}

// tableOfScope returns the table name of a table scope
// ".../providers/Microsoft.OperationalInsights/workspaces/{ws}/tables/{t}",
// in the case it was given.
func tableOfScope(scope string) (string, bool) {
	p := strings.Split(strings.TrimSuffix(scope, "/"), "/")
	n := len(p)
	if n < 6 || !strings.EqualFold(p[n-2], "tables") || !strings.EqualFold(p[n-4], "workspaces") ||
		!strings.EqualFold(p[n-5], "Microsoft.OperationalInsights") || !strings.EqualFold(p[n-6], "providers") || p[n-1] == "" {
		return "", false
	}
	return p[n-1], true
}

// assignmentsFor returns the assignments of p and its groups, from the cache
// when fresh.
func (a *Authorizer) assignmentsFor(ctx context.Context, p identity.Principal) ([]assignment, error) {
	ids := make([]string, 0, 1+len(p.GroupIDs))
	ids = append(ids, strings.ToLower(p.ObjectID))
	for _, g := range p.GroupIDs {
		if g != "" {
			ids = append(ids, strings.ToLower(g))
		}
	}
	slices.Sort(ids[1:])
	ids = slices.Compact(ids)
	key := strings.Join(ids, "\x00")

	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[key]
	gen := a.gen
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e.assignments, nil
	}

	if a.groups != nil {
		gs, err := a.groups.TransitiveGroups(ctx, ids)
		if err != nil {
			return nil, fmt.Errorf("resolve group memberships: %w", err)
		}
		for _, g := range gs {
			ids = append(ids, strings.ToLower(g))
		}
		slices.Sort(ids[1:])
		ids = slices.Compact(ids)
	}
	var raw []RoleAssignment
	var err error
	if a.detailed != nil {
		raw, err = a.detailed.RoleAssignmentDetailsFor(ctx, ids)
	} else {
		raw, err = a.store.RoleAssignmentsFor(ctx, ids)
	}
	if err != nil {
		return nil, fmt.Errorf("read role assignments: %w", err)
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[id] = true
	}
	out := make([]assignment, 0, len(raw))
	for _, ra := range raw {
		if !want[strings.ToLower(ra.PrincipalID)] {
			continue // a store returning extra rows must not widen access
		}
		sc, ok := normalizeScope(ra.Scope)
		if !ok {
			a.log.LogAttrs(ctx, slog.LevelWarn, "role assignment has a malformed scope; ignored",
				slog.String("assignment_id", ra.ID))
			continue
		}
		out = append(out, assignment{RoleAssignment: ra, scope: sc, role: roleGUID(ra.RoleDefinitionID)})
	}
	if a.ttl > 0 {
		a.mu.Lock()
		if a.gen == gen {
			if len(a.cache) >= maxCacheEntries {
				a.cache = map[string]cacheEntry{}
			}
			a.cache[key] = cacheEntry{assignments: out, expires: now.Add(a.ttl)}
		}
		a.mu.Unlock()
	}
	return out, nil
}
