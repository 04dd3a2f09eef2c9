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

// DefaultCacheTTL is how long the assignments of one principal are reused
// before they are read from the store again (unless Invalidate is called).
const DefaultCacheTTL = 5 * time.Second

// maxCacheEntries bounds the per-principal assignment cache.
const maxCacheEntries = 16384

// Options configures an Authorizer. Zero fields take the documented defaults.
type Options struct {
	// Store holds the role assignments. Required: without it every request is denied.
	Store AssignmentStore
	// Roles are custom role definitions in addition to the built-in ones. A
	// custom role cannot replace a built-in role's ID.
	Roles []RoleDefinition
	// CacheTTL bounds how stale cached assignments may be. Zero means
	// DefaultCacheTTL; negative disables the cache.
	CacheTTL time.Duration
	// Logger receives warnings about unusable assignments. Nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Authorizer answers authorization requests against Azure-style role
// assignments. It is safe for concurrent use.
type Authorizer struct {
	store AssignmentStore
	roles map[string]*compiledRole // lower-case GUID → role; immutable after New
	ttl   time.Duration
	log   *slog.Logger
	now   func() time.Time

	mu    sync.Mutex // guards cache and gen
	cache map[string]cacheEntry
	gen   uint64 // bumped by Invalidate so in-flight loads do not store stale results
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
		store: opts.Store,
		roles: map[string]*compiledRole{},
		ttl:   opts.CacheTTL,
		log:   opts.Logger,
		now:   opts.Now,
		cache: map[string]cacheEntry{},
	}
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
		a.roles[id] = compileRole(d)
	}
	for _, d := range builtinRoles() {
		a.roles[strings.ToLower(d.ID)] = compileRole(d)
	}
	return a
}

// Invalidate drops every cached assignment, so the next Authorize reads the
// store. Call it after creating or deleting role assignments.
func (a *Authorizer) Invalidate() {
	a.mu.Lock()
	a.cache = map[string]cacheEntry{}
	a.gen++
	a.mu.Unlock()
}

// RoleDefinition returns the role (built-in or custom) with the given ID,
// which may be a bare GUID or a role definition resource ID.
func (a *Authorizer) RoleDefinition(id string) (RoleDefinition, bool) {
	r, ok := a.roles[roleGUID(id)]
	if !ok {
		return RoleDefinition{}, false
	}
	return r.def, true
}

// Authorize decides whether p may perform act at scope. It is the only
// authorization check in Custos. It denies by default: the result is allowed
// only when an assignment to p (or to one of p's groups) at scope or above it
// grants a role whose permissions include act. A non-nil error means deny;
// the returned Decision then has Allowed false.
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
	for _, as := range assignments {
		if !covers(as.scope, target) {
			continue
		}
		role, ok := a.roles[as.role]
		if !ok {
			a.log.LogAttrs(ctx, slog.LevelWarn, "role assignment names an unknown role definition",
				slog.String("assignment_id", as.ID), slog.String("role_definition_id", as.RoleDefinitionID))
			continue
		}
		if !role.allows(op, data) {
			continue
		}
		if strings.TrimSpace(as.Condition) != "" {
			// ABAC conditions are not evaluated yet; a conditional assignment
			// grants nothing rather than more than it should.
			a.log.LogAttrs(ctx, slog.LevelWarn, "role assignment condition not supported; assignment ignored",
				slog.String("assignment_id", as.ID))
			continue
		}
		return Decision{
			Allowed: true,
			Reason: fmt.Sprintf("role %q (%s) assigned at %s to %s by %s grants %s",
				role.def.Name, role.def.ID, as.Scope, as.PrincipalID, as.ID, act),
		}, nil
	}
	return Decision{Reason: fmt.Sprintf("no role assignment grants %s at %s", act, scope)}, nil
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

	raw, err := a.store.RoleAssignmentsFor(ctx, ids)
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
