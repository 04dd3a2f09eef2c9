package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"custos/internal/api"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// ActionWrite is the data action the Logs Ingestion API requires on the rule
// (granted by Monitoring Metrics Publisher).
const ActionWrite = rbac.ActionTelemetryWrite

// Supported api-version values of the Logs Ingestion API.
var apiVersions = map[string]bool{"2023-01-01": true, "2021-11-01-preview": true}

// Rules looks data collection rules up by immutable ID. The catalog implements
// it (through a small adapter). A missing rule is reported as an error for
// which errors.Is(err, ErrRuleNotFound) holds, or as an api.Coded error of
// kind api.KindNotFound. Implementations are safe for concurrent use.
type Rules interface {
	RuleByImmutableID(ctx context.Context, immutableID string) (*Rule, error)
}

// Tables returns the schema of a workspace table (system columns included).
// A missing table is an error of kind api.KindNotFound or one wrapping
// ErrTableNotFound. Implementations are safe for concurrent use.
type Tables interface {
	TableSchema(ctx context.Context, workspaceID, table string) (store.Schema, error)
}

// WorkspaceResolver maps a workspace ARM resource ID to its customerId, for
// rules whose destinations carry only workspaceResourceId. Optional.
type WorkspaceResolver interface {
	WorkspaceIDByResourceID(ctx context.Context, resourceID string) (string, error)
}

// Transform is a compiled ingestion-time transformation (engine.Transform).
type Transform interface {
	Output() store.Schema
	Run(ctx context.Context, in *store.Batch) (*store.Batch, error)
}

// CompileFunc compiles a transformKql for an input schema (engine.CompileTransform).
type CompileFunc func(src string, input store.Schema) (Transform, error)

// ErrTableNotFound may be returned (wrapped) by a Tables implementation.
var ErrTableNotFound = errors.New("ingest: table not found")

// Options configure the ingestion API. Zero values mean the documented defaults.
type Options struct {
	Rules      Rules            // required
	Tables     Tables           // required
	Store      store.Appendable // required
	Workspaces WorkspaceResolver
	// CompileTransform compiles transformKql; nil means EngineTransforms.
	CompileTransform CompileFunc
	Logger           *slog.Logger // nil discards logs

	MaxBodyBytes      int64 // 0 → DefaultMaxBodyBytes (1 MB)
	MaxFieldBytes     int   // 0 → DefaultMaxFieldBytes (64 KB)
	RequestsPerMinute int64 // per rule; 0 → DefaultRequestsPerMinute (12,000)
	BytesPerMinute    int64 // per rule; 0 → DefaultBytesPerMinute (2 GB)
	Now               func() time.Time
}

// API serves the Logs Ingestion API. Safe for concurrent use.
type API struct {
	opts    Options
	log     *slog.Logger
	limiter *rateLimiter

	mu         sync.Mutex // guards transforms
	transforms map[transformKey]Transform

	scopeMu sync.RWMutex      // guards scopes
	scopes  map[string]string // rule resource ID by immutable ID, for scope

	// lastRecords is the record count of the last decoded body: the next
	// body's column vectors are allocated for that many records.
	lastRecords atomic.Int64
}

type transformKey struct {
	rule, etag string
	flow       int
	stream     string
}

const (
	maxCachedTransforms = 4096
	maxCachedScopes     = 4096
)

// New returns the ingestion API. It panics if a required dependency is
// missing, which is a wiring bug.
func New(opts Options) *API {
	if opts.Rules == nil || opts.Tables == nil || opts.Store == nil {
		panic("BUG: ingest.New needs Rules, Tables and Store")
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.MaxFieldBytes <= 0 {
		opts.MaxFieldBytes = DefaultMaxFieldBytes
	}
	if opts.RequestsPerMinute <= 0 {
		opts.RequestsPerMinute = DefaultRequestsPerMinute
	}
	if opts.BytesPerMinute <= 0 {
		opts.BytesPerMinute = DefaultBytesPerMinute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.CompileTransform == nil {
		opts.CompileTransform = EngineTransforms
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &API{
		opts:       opts,
		log:        log,
		limiter:    newRateLimiter(opts.RequestsPerMinute, opts.BytesPerMinute, opts.Now),
		transforms: make(map[transformKey]Transform),
		scopes:     make(map[string]string),
	}
}

// Routes returns the ingestion endpoint.
func (a *API) Routes() []api.Route {
	return []api.Route{{
		Method:   http.MethodPost,
		Pattern:  "/dataCollectionRules/{immutableId}/streams/{stream}",
		Audience: identity.AudienceIngestion,
		Action:   ActionWrite,
		Scope:    a.scope,
		Handler:  a.upload,
	}}
}

// scope returns the rule's resource ID. An unknown rule gets scope "/" and
// the handler answers 404 if the caller is allowed that far.
//
// The resource ID is cached by immutable ID, so a request reads its rule from
// the catalog once (in the handler) rather than twice: an immutable ID is
// assigned once, to one rule, and an ARM resource cannot be renamed, so the
// mapping never changes while the rule exists. The handler always reads the
// rule afresh and drops the entry when the rule is gone; until then a caller
// allowed at the deleted rule's scope gets 404 instead of 403.
func (a *API) scope(r *http.Request) rbac.Scope {
	id := r.PathValue("immutableId")
	a.scopeMu.RLock()
	rid, ok := a.scopes[id]
	a.scopeMu.RUnlock()
	if ok {
		return rbac.Scope(rid)
	}
	rule, err := a.opts.Rules.RuleByImmutableID(r.Context(), id)
	if err != nil || rule == nil || rule.ResourceID == "" {
		return "/"
	}
	a.rememberScope(id, rule.ResourceID)
	return rbac.Scope(rule.ResourceID)
}

func (a *API) rememberScope(immutableID, resourceID string) {
	a.scopeMu.Lock()
	defer a.scopeMu.Unlock()
	if len(a.scopes) >= maxCachedScopes {
		clear(a.scopes)
	}
	a.scopes[immutableID] = resourceID
}

func (a *API) forgetScope(immutableID string) {
	a.scopeMu.Lock()
	delete(a.scopes, immutableID)
	a.scopeMu.Unlock()
}

func isNotFound(err error, sentinel error) bool {
	if errors.Is(err, sentinel) {
		return true
	}
	var c api.Coded
	if errors.As(err, &c) {
		_, kind := c.AzureError()
		return kind == api.KindNotFound
	}
	return false
}

func (a *API) upload(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
	if id := r.Header.Get("x-ms-client-request-id"); id != "" {
		w.Header().Set("x-ms-client-request-id", id)
	}
	if err := a.ingest(r); err != nil {
		var ie *Error
		if errors.As(err, &ie) && ie.Kind == api.KindThrottled && ie.RetryAfter > 0 {
			secs := int64((ie.RetryAfter + time.Second - 1) / time.Second)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		api.WriteError(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// pending is the converted data for one destination table.
type pending struct {
	ref     store.TableRef
	batches []*store.Batch
}

func (a *API) ingest(r *http.Request) error {
	ctx := r.Context()
	ver := r.URL.Query().Get("api-version")
	if ver == "" {
		return errorf(api.KindInvalid, codeMissingAPIVer, "The api-version query parameter (?api-version=) is required for all requests.")
	}
	if !apiVersions[ver] {
		return errorf(api.KindInvalid, codeInvalidAPIVer, "The api-version '%s' is invalid. The supported versions are '2023-01-01', '2021-11-01-preview'.", truncateUTF8(ver, 64))
	}
	ruleID, streamName := r.PathValue("immutableId"), r.PathValue("stream")
	rule, err := a.opts.Rules.RuleByImmutableID(ctx, ruleID)
	if err != nil || rule == nil {
		a.forgetScope(ruleID)
		if err == nil || isNotFound(err, ErrRuleNotFound) {
			return errorf(api.KindNotFound, codeNotFound, "Data collection rule with immutable Id '%s' not found.", truncateUTF8(ruleID, 128))
		}
		return fmt.Errorf("look up data collection rule: %w", err)
	}
	stream, schema, ok := rule.stream(streamName)
	if !ok {
		return errorf(api.KindInvalid, codeInvalidStream, "Stream '%s' is not declared in the data collection rule '%s'.", truncateUTF8(streamName, 128), rule.ImmutableID)
	}
	flows := rule.flowsFor(stream)
	if len(flows) == 0 {
		return errorf(api.KindInvalid, codeInvalidStream, "Stream '%s' is not used by any data flow of the data collection rule '%s'.", stream, rule.ImmutableID)
	}
	limiterKey := rule.ImmutableID
	if wait, ok := a.limiter.admit(limiterKey); !ok {
		e := errorf(api.KindThrottled, codeThrottled, "The data collection rule '%s' exceeded its rate limit. Retry after %d seconds.", rule.ImmutableID, int64((wait+time.Second-1)/time.Second))
		e.RetryAfter = wait
		return e
	}

	body, sizes, err := bodyReader(r, a.opts.MaxBodyBytes)
	if err != nil {
		return err
	}
	capHint := int(a.lastRecords.Load())
	if r.ContentLength > 0 {
		capHint = min(capHint, int(min(r.ContentLength, 1<<30)/16))
	}
	in, err := DecodeRecords(body, schema, DecodeOptions{MaxFieldBytes: a.opts.MaxFieldBytes, Capacity: capHint})
	if err == nil {
		a.lastRecords.Store(int64(in.Len))
	}
	wire, plain := sizes()
	a.limiter.charge(limiterKey, max(wire, plain))
	if err != nil {
		return err
	}
	if in.Len == 0 {
		return nil
	}

	// Convert everything before writing anything.
	var out []*pending
	byRef := map[store.TableRef]*pending{}
	// The decoded vectors can be handed to the store without a copy when
	// they go, untransformed, into exactly one batch.
	owned, uses := true, 0
	for _, fi := range flows {
		flow := rule.DataFlows[fi]
		tr, err := a.transform(rule, fi, stream, schema, flow.TransformKQL)
		if err != nil {
			return err
		}
		res := in
		if tr != nil {
			owned = false
			if res, err = tr.Run(ctx, in); err != nil {
				return errorf(api.KindInvalid, codeInvalidContent, "The transformation of data flow %d failed: %v.", fi, err)
			}
		}
		if res == nil || res.Len == 0 {
			continue
		}
		table := OutputTable(flow.OutputStream, stream)
		for _, dn := range flow.Destinations {
			dest, ok := rule.Destinations[dn]
			if !ok {
				continue // not a Log Analytics destination (metrics, ...)
			}
			ws, err := a.workspaceID(ctx, dest)
			if err != nil {
				return err
			}
			ref := store.TableRef{WorkspaceID: ws, Table: table}
			tschema, err := a.opts.Tables.TableSchema(ctx, ws, table)
			if err != nil {
				if isNotFound(err, ErrTableNotFound) {
					return errorf(api.KindInvalid, codeInvalidRule, "The output table '%s' of data flow %d does not exist in workspace '%s'.", table, fi, ws)
				}
				return fmt.Errorf("table schema %s/%s: %w", ws, table, err)
			}
			cb, err := conform(res, tschema, a.opts.MaxFieldBytes)
			if err != nil {
				return errorf(api.KindInvalid, codeInvalidTransfom, "Data flow %d to table '%s': %v.", fi, table, err)
			}
			p := byRef[ref]
			if p == nil {
				p = &pending{ref: ref}
				byRef[ref] = p
				out = append(out, p)
			}
			p.batches = append(p.batches, cb)
			uses++
		}
	}
	return a.write(ctx, out, owned && uses == 1)
}

// write appends every pending batch through one appender per table and
// commits them. Append validates; nothing is committed unless all appends pass.
// With owned (one batch whose vectors nothing else uses) the store may keep
// the batch's vectors instead of copying them.
func (a *API) write(ctx context.Context, out []*pending, owned bool) error {
	apps := make([]store.Appender, 0, len(out))
	rollback := func() {
		for _, ap := range apps {
			if err := ap.Rollback(); err != nil {
				a.log.LogAttrs(ctx, slog.LevelWarn, "rollback failed", slog.Any("error", err))
			}
		}
	}
	for _, p := range out {
		ap, err := a.opts.Store.Appender(ctx, p.ref)
		if err != nil {
			rollback()
			return fmt.Errorf("open appender %s/%s: %w", p.ref.WorkspaceID, p.ref.Table, err)
		}
		apps = append(apps, ap)
		for _, b := range p.batches {
			appendFn := ap.Append
			if oa, ok := ap.(store.OwnedAppender); ok && owned {
				appendFn = oa.AppendOwned
			}
			if err := appendFn(b); err != nil {
				rollback()
				var c api.Coded
				if errors.As(err, &c) {
					return err
				}
				return errorf(api.KindInvalid, codeInvalidContent, "The records do not fit table '%s': %v.", p.ref.Table, err)
			}
		}
	}
	for i, ap := range apps {
		if err := ap.Commit(ctx); err != nil {
			for _, rest := range apps[i+1:] {
				_ = rest.Rollback()
			}
			return fmt.Errorf("commit %s/%s: %w", out[i].ref.WorkspaceID, out[i].ref.Table, err)
		}
	}
	return nil
}

func (a *API) workspaceID(ctx context.Context, d Destination) (string, error) {
	if d.WorkspaceID != "" {
		return d.WorkspaceID, nil
	}
	if a.opts.Workspaces == nil || d.WorkspaceResourceID == "" {
		return "", errorf(api.KindInvalid, codeInvalidRule, "Destination '%s' of the data collection rule has no workspace.", d.Name)
	}
	id, err := a.opts.Workspaces.WorkspaceIDByResourceID(ctx, d.WorkspaceResourceID)
	if err != nil {
		if isNotFound(err, ErrTableNotFound) {
			return "", errorf(api.KindInvalid, codeInvalidRule, "The workspace '%s' of destination '%s' does not exist.", d.WorkspaceResourceID, d.Name)
		}
		return "", fmt.Errorf("resolve workspace %s: %w", d.WorkspaceResourceID, err)
	}
	return id, nil
}

// transform returns the compiled transformation of data flow fi, or nil for
// the passthrough "source". Compiled transforms are cached per rule etag.
func (a *API) transform(rule *Rule, fi int, stream string, schema store.Schema, src string) (Transform, error) {
	if s := strings.TrimSpace(src); s == "" || s == "source" {
		return nil, nil
	}
	key := transformKey{rule: rule.ImmutableID, etag: rule.ETag, flow: fi, stream: stream}
	a.mu.Lock()
	tr, ok := a.transforms[key]
	a.mu.Unlock()
	if ok {
		return tr, nil
	}
	if a.opts.CompileTransform == nil {
		return nil, errorf(api.KindInvalid, codeInvalidRule, "Data flow %d has a transformation, but transformations are not available on this server.", fi)
	}
	tr, err := a.opts.CompileTransform(src, schema)
	if err != nil {
		return nil, errorf(api.KindInvalid, codeInvalidRule, "The transformation of data flow %d does not compile: %v.", fi, err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for k := range a.transforms {
		if k.rule == key.rule && k.etag != key.etag {
			delete(a.transforms, k) // an older version of the rule
		}
	}
	if len(a.transforms) >= maxCachedTransforms {
		clear(a.transforms)
	}
	a.transforms[key] = tr
	return tr, nil
}
