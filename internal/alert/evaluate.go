package alert

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"custos/internal/activity"
	"custos/internal/arm"
	"custos/internal/catalog"
	"custos/internal/engine"
	"custos/internal/identity"
	"custos/internal/kql"
	"custos/internal/rbac"
	"custos/internal/store"
)

// ruleState is the scheduler's persisted state of one rule (the catalog's
// alert_rule_state document). ClockEpoch counts the backward steps of the
// clock the scheduler resumed across (scheduler.go, resumeAfterClockStep):
// window ends repeat after such a step, so it is part of alert IDs, and a
// window evaluated after the step never takes the ID of one before it.
// MaxWindowEnd is the latest window end ever evaluated (LastWindowEnd is
// earlier after such a step), so that when the clock comes forward again
// the windows evaluated before the step are not evaluated again.
type ruleState struct {
	Frequency           string                  `json:"frequency"`
	NextWindowEnd       time.Time               `json:"nextWindowEnd"`
	LastWindowEnd       time.Time               `json:"lastWindowEnd,omitzero"`
	LastEvaluation      time.Time               `json:"lastEvaluation,omitzero"`
	LastDurationMs      int64                   `json:"lastDurationMs"`
	LastResult          string                  `json:"lastResult,omitempty"`
	LastError           string                  `json:"lastError,omitempty"`
	ConsecutiveFailures int                     `json:"consecutiveFailures,omitempty"`
	Missed              int64                   `json:"missed,omitempty"`
	MutedUntil          time.Time               `json:"mutedUntil,omitzero"`
	ClockEpoch          int                     `json:"clockEpoch,omitempty"`
	MaxWindowEnd        time.Time               `json:"maxWindowEnd,omitzero"`
	Series              map[string]*seriesState `json:"series"`
}

// seriesState is the state of one dimension combination.
type seriesState struct {
	Dims      []dimValue `json:"dims"`
	History   []bool     `json:"history"` // newest last; at most numberOfEvaluationPeriods
	Fired     bool       `json:"fired"`
	AlertID   string     `json:"alertId,omitempty"`
	FiredAt   time.Time  `json:"firedAt,omitzero"`
	LastValue float64    `json:"lastValue"`
	// Metric alerts: the last value of every criterion (nil when a
	// criterion had no data) and the workspace of the series.
	Values []float64 `json:"values,omitempty"`
	Target string    `json:"target,omitempty"`
}

type dimValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Evaluation results.
const (
	resultSucceeded = "Succeeded"
	resultFailed    = "Failed"
)

// series is one aggregated dimension combination of an evaluation.
type series struct {
	key   string
	dims  []dimValue
	value float64
	n     int // rows aggregated
	// Metric alerts: every criterion's value, whether all breach, and the
	// workspace the series is from.
	values []float64
	breach bool
	target string
}

// evaluateAndCommit evaluates the window ending at st.NextWindowEnd and
// commits the new state, alerts and notifications in one transaction. A
// query or authorization failure is an evaluation result (recorded, window
// advanced); only a failed commit is returned as an error.
func (s *Service) evaluateAndCommit(ctx context.Context, r *rule, prev *ruleState, prevRaw json.RawMessage) (*ruleState, json.RawMessage, error) {
	started := s.now()
	end := prev.NextWindowEnd
	start := end.Add(-r.QueryRange)
	next := cloneState(prev)
	next.LastWindowEnd = end
	if end.After(next.MaxWindowEnd) {
		next.MaxWindowEnd = end
	}
	next.NextWindowEnd = end.Add(r.Frequency)
	next.LastEvaluation = started

	commit := catalog.EvaluationCommit{RuleID: r.ID, PrevState: prevRaw}
	qstart := time.Now()
	ss, ws, err := s.runQuery(ctx, r, start, end)
	s.stats.queryNanos.Add(int64(time.Since(qstart)))
	if err != nil && ctx.Err() != nil {
		return nil, nil, ctx.Err()
	}
	s.stats.evaluations.Add(1)
	if err != nil {
		s.stats.evaluationErrors.Add(1)
		next.LastResult, next.LastError = resultFailed, err.Error()
		next.ConsecutiveFailures++
		lvl := slog.LevelWarn
		if next.ConsecutiveFailures == 1 {
			lvl = slog.LevelError
		}
		s.log.LogAttrs(ctx, lvl, "alert rule evaluation failed", slog.String("rule_id", r.ID),
			slog.Time("window_end", end), slog.Any("error", err))
	} else {
		next.LastResult, next.LastError, next.ConsecutiveFailures = resultSucceeded, "", 0
		if err := s.applySeries(ctx, r, next, ss, ws, start, end, &commit); err != nil {
			return nil, nil, err
		}
	}
	next.LastDurationMs = s.now().Sub(started).Milliseconds()
	plain, err := json.Marshal(next)
	if err != nil {
		return nil, nil, fmt.Errorf("encode rule state: %w", err)
	}
	raw, err := s.sealState(ctx, r, plain)
	if err != nil {
		return nil, nil, err
	}
	commit.State = raw
	cstart := time.Now()
	err = s.commit(ctx, commit)
	s.stats.commitNanos.Add(int64(time.Since(cstart)))
	if err != nil {
		return nil, nil, err
	}
	if next.ConsecutiveFailures == 1 || (prev.ConsecutiveFailures > 0 && next.ConsecutiveFailures == 0) {
		s.recordActivity(ctx, r, next, end)
	}
	s.stats.notificationsMade.Add(int64(len(commit.Notifications)))
	if len(commit.Notifications) > 0 {
		wake(s.wakeDeliver)
	}
	return next, raw, nil
}

func cloneState(st *ruleState) *ruleState {
	c := *st
	c.Series = make(map[string]*seriesState, len(st.Series))
	for k, v := range st.Series {
		sc := *v
		sc.History = append([]bool(nil), v.History...)
		sc.Dims = append([]dimValue(nil), v.Dims...)
		c.Series[k] = &sc
	}
	return &c
}

// principalOf is the principal a rule's query runs as: its system-assigned
// identity, never the rule's creator.
func principalOf(r *rule) (identity.Principal, error) {
	id := r.Identity
	if id == nil || id.Type == "" || id.Type == IdentityNone {
		return identity.Principal{}, &Error{Code: "RuleIdentityMissing", Kind: "forbidden", base: ErrNoIdentity,
			Message: "The rule has no managed identity, so its query cannot run. Set identity.type to \"SystemAssigned\" and grant the identity read access (for example Log Analytics Reader) on the rule's scopes."}
	}
	if id.PrincipalID == "" || id.TenantID == "" {
		return identity.Principal{}, &Error{Code: "RuleIdentityMissing", Kind: "forbidden", base: ErrNoIdentity,
			Message: "The rule's identity has no principal yet."}
	}
	return identity.Principal{TenantID: id.TenantID, ObjectID: id.PrincipalID, AppID: id.AppID,
		Kind: identity.KindServicePrincipal, Name: "alert rule " + r.Name}, nil
}

// rulePrincipal is the principal a rule runs as, checked to exist and be
// enabled: a disabled or deleted identity reads nothing, whatever its roles.
func (s *Service) rulePrincipal(ctx context.Context, r *rule) (identity.Principal, error) {
	p, err := principalOf(r)
	if err != nil {
		return identity.Principal{}, err
	}
	ps, err := s.cat.PrincipalState(ctx, p.TenantID, p.ObjectID)
	switch {
	case errors.Is(err, identity.ErrNotFound) || errors.Is(err, catalog.ErrNotFound):
		return identity.Principal{}, forbidden("RuleIdentityNotFound", "The rule's identity (principal %s) no longer exists.", p.ObjectID)
	case err != nil:
		return identity.Principal{}, fmt.Errorf("look up the rule's identity: %w", err)
	case !ps.Enabled:
		return identity.Principal{}, forbidden("RuleIdentityDisabled", "The rule's identity (principal %s) is disabled.", p.ObjectID)
	}
	if ps.Kind != "" {
		p.Kind = ps.Kind
	}
	return p, nil
}

// authorizeScope resolves a rule scope to its workspace and table schemas
// and authorizes the rule's principal to query it. The decision's row
// conditions apply to the rule's queries.
func (s *Service) authorizeScope(ctx context.Context, p identity.Principal, scope string) (catalog.Workspace, kql.MapCatalog, rbac.Decision, error) {
	ws, cat, err := s.scopeSchema(ctx, scope)
	if err != nil {
		if errors.Is(err, catalog.ErrNotFound) {
			return ws, nil, rbac.Decision{}, notFound("ScopeNotFound", "The scope '%s' of the rule does not exist.", truncate(scope, 300))
		}
		return ws, nil, rbac.Decision{}, fmt.Errorf("look up scope: %w", err)
	}
	dec, err := s.opts.Authorizer.Authorize(ctx, p, rbac.ActionQueryRead, rbac.Scope(ws.ID()))
	if err != nil || !dec.Allowed {
		return ws, nil, rbac.Decision{}, forbidden("RuleIdentityNotAuthorized",
			"The rule's identity (principal %s) does not have authorization to perform action '%s' over scope '%s'. Grant it a role such as Log Analytics Reader on the workspace.",
			p.ObjectID, rbac.ActionQueryRead, ws.ID())
	}
	return ws, cat, dec, nil
}

// runQuery runs the rule's query (or, for a metric alert, its metric
// queries) over [start, end) on every scope as the rule's identity and
// aggregates the rows per dimension combination. It returns the series and
// the workspaces queried.
func (s *Service) runQuery(ctx context.Context, r *rule, start, end time.Time) ([]series, []catalog.Workspace, error) {
	if r.contentErr != nil {
		return nil, nil, r.contentErr
	}
	if r.Metric != nil {
		return s.runMetric(ctx, r, start, end)
	}
	p, err := s.rulePrincipal(ctx, r)
	if err != nil {
		return nil, nil, err
	}
	agg := newAggregator(&r.Crit)
	var wss []catalog.Workspace
	for _, scope := range r.Props.Scopes {
		ws, cat, dec, err := s.authorizeScope(ctx, p, scope)
		if err != nil {
			return nil, nil, err
		}
		run := func(query string) (*engine.Result, error) {
			qctx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
			defer cancel()
			return s.opts.Engine.Query(qctx, engine.Request{
				Query: query, Tables: cat, Source: s.opts.Source, WorkspaceID: ws.CustomerID,
				Timespan:      store.TimeRange{From: store.TicksFromTime(start), To: store.TicksFromTime(end)},
				RowConditions: dec.RowConditions, Now: end, Timeout: s.opts.QueryTimeout,
			})
		}
		narrowed, counted := narrowQuery(&r.Crit)
		res, err := run(narrowed)
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
			// The narrowed query failed (a dimension or measure the query
			// does not return, a dimension summarize cannot group by, or a
			// query the appended operator does not fit): the rule's own
			// query gives the result or the error the user can act on.
			res, err = run(r.Crit.Query)
			counted = false
		}
		if err != nil {
			return nil, nil, fmt.Errorf("query on %s: %w", ws.Name, err)
		}
		if len(res.Tables) == 0 {
			return nil, nil, invalidCode("InvalidQuery", "", "The query returned no table.")
		}
		if counted {
			agg.weightColumn = countedColumn
		} else {
			agg.weightColumn = ""
		}
		if err := agg.add(&res.Tables[0]); err != nil {
			return nil, nil, err
		}
		wss = append(wss, ws)
	}
	return agg.result(), wss, nil
}

// countedColumn is the row count narrowQuery's summarize adds; a name no
// user column is likely to have.
const countedColumn = "AlertRowCount__"

// narrowQuery returns the rule's query followed by the part of the rule's
// aggregation the engine can do, so that the engine reads only the columns the
// aggregation needs from the store, not every column of every matching row (a
// log message column costs far more to decode than a count needs). Azure, too,
// appends its aggregation to a rule's query.
//
// A count is done by the engine: `summarize count() by <dims>` returns a
// row per dimension combination (counted reports this; the aggregator then
// adds up countedColumn instead of counting rows), so no matching row is
// materialized at all. Other aggregations project the dimensions and the
// measure: the aggregator checks the measure's type and converts it to a
// number as it always has.
func narrowQuery(c *criterion) (query string, counted bool) {
	var dims []string
	seen := map[string]bool{}
	add := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			dims = append(dims, kql.QuoteName(name))
		}
	}
	for _, d := range c.Dimensions {
		add(d.Name)
	}
	if c.TimeAggregation == AggCount {
		q := c.Query + "\n| summarize " + countedColumn + " = count()"
		if len(dims) > 0 {
			q += " by " + strings.Join(dims, ", ")
		}
		return q, true
	}
	add(c.MetricMeasureColumn)
	return c.Query + "\n| project " + strings.Join(dims, ", "), false
}

// aggregator groups result rows by dimension combination.
type aggregator struct {
	c      *criterion
	groups map[string]*aggGroup
	// weightColumn, when set, names a long column holding how many rows each
	// result row stands for (narrowQuery's count); otherwise a row is one.
	weightColumn string
}

type aggGroup struct {
	dims          []dimValue
	n             int
	sum, min, max float64
	values        int
}

func newAggregator(c *criterion) *aggregator {
	return &aggregator{c: c, groups: map[string]*aggGroup{}}
}

func (a *aggregator) add(t *engine.Table) error {
	c := a.c
	dimIdx := make([]int, len(c.Dimensions))
	for i, d := range c.Dimensions {
		dimIdx[i] = t.Schema.Index(d.Name)
		if dimIdx[i] < 0 {
			return invalidCode("InvalidQuery", "", "The dimension column '%s' is not in the query result.", truncate(d.Name, 100))
		}
	}
	measure := -1
	if c.TimeAggregation != AggCount {
		measure = t.Schema.Index(c.MetricMeasureColumn)
		if measure < 0 {
			return invalidCode("InvalidQuery", "", "The metricMeasureColumn '%s' is not in the query result.", truncate(c.MetricMeasureColumn, 100))
		}
		switch t.Schema[measure].Type {
		case store.TypeInt, store.TypeLong, store.TypeReal, store.TypeDecimal:
		default:
			return invalidCode("InvalidQuery", "", "The metricMeasureColumn '%s' is of type %s; it must be numeric.",
				truncate(c.MetricMeasureColumn, 100), t.Schema[measure].Type)
		}
	}
	weight := -1
	if a.weightColumn != "" {
		if weight = t.Schema.Index(a.weightColumn); weight < 0 || t.Schema[weight].Type != store.TypeLong {
			return fmt.Errorf("alert: the narrowed query returned no long column %s", a.weightColumn)
		}
	}
	dims := make([]dimValue, len(c.Dimensions))
	var kb []byte // the group's map key: length-prefixed dimension values
	for _, b := range t.Batches {
	row:
		for i := 0; i < b.Len; i++ {
			kb = kb[:0]
			for j, d := range c.Dimensions {
				v := cellString(b.Cols[dimIdx[j]], i)
				if !dimensionSelects(&d, v) {
					continue row
				}
				dims[j] = dimValue{Name: d.Name, Value: v}
				kb = strconv.AppendInt(kb, int64(len(v)), 10)
				kb = append(kb, ':')
				kb = append(kb, v...)
			}
			g := a.groups[string(kb)]
			if g == nil {
				g = &aggGroup{dims: append([]dimValue(nil), dims...)}
				a.groups[string(kb)] = g
			}
			if weight >= 0 {
				g.n += int(b.Cols[weight].Int[i])
			} else {
				g.n++
			}
			if measure >= 0 {
				v, ok := cellFloat(b.Cols[measure], i)
				if !ok {
					continue
				}
				if g.values == 0 || v < g.min {
					g.min = v
				}
				if g.values == 0 || v > g.max {
					g.max = v
				}
				g.sum += v
				g.values++
			}
		}
	}
	return nil
}

func (a *aggregator) result() []series {
	c := a.c
	if len(a.groups) == 0 && len(c.Dimensions) == 0 && c.TimeAggregation == AggCount {
		// No rows: a count of zero is a value (LessThan rules fire on it).
		return []series{{key: seriesKey(nil), value: 0}}
	}
	out := make([]series, 0, len(a.groups))
	for _, g := range a.groups {
		sr := series{key: seriesKey(g.dims), dims: g.dims, n: g.n}
		switch c.TimeAggregation {
		case AggCount:
			sr.value = float64(g.n)
		case AggTotal:
			sr.value = g.sum
		case AggAverage, AggMinimum, AggMaximum:
			if g.values == 0 {
				continue // only nulls: no value to compare
			}
			switch c.TimeAggregation {
			case AggAverage:
				sr.value = g.sum / float64(g.values)
			case AggMinimum:
				sr.value = g.min
			default:
				sr.value = g.max
			}
		}
		out = append(out, sr)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// dimensionSelects applies a dimension's Include/Exclude filter to a value.
func dimensionSelects(d *dimension, v string) bool {
	in := false
	for _, x := range d.Values {
		if x == "*" || x == v {
			in = true
			break
		}
	}
	if d.Operator == DimExclude {
		// Exclude "*" would exclude everything; Azure treats it the same.
		return !in
	}
	return in
}

func seriesKey(dims []dimValue) string {
	if len(dims) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(dims)
	return string(b)
}

func cellString(v *store.Vector, i int) string {
	if v.IsNull(i) {
		return ""
	}
	switch v.Type {
	case store.TypeBool:
		return strconv.FormatBool(v.Bool[i])
	case store.TypeInt, store.TypeLong:
		return strconv.FormatInt(v.Int[i], 10)
	case store.TypeReal, store.TypeDecimal:
		return strconv.FormatFloat(v.Real[i], 'g', -1, 64)
	case store.TypeDatetime:
		return store.TimeFromTicks(v.Int[i]).Format(time.RFC3339Nano)
	case store.TypeTimespan:
		return time.Duration(v.Int[i] * 100).String()
	default:
		return v.Str[i]
	}
}

func cellFloat(v *store.Vector, i int) (float64, bool) {
	if v.IsNull(i) {
		return 0, false
	}
	switch v.Type {
	case store.TypeInt, store.TypeLong:
		return float64(v.Int[i]), true
	case store.TypeReal, store.TypeDecimal:
		return v.Real[i], true
	}
	return 0, false
}

// applySeries updates the per-series state with this window's values and
// adds the resulting alert changes and notifications to the commit.
func (s *Service) applySeries(ctx context.Context, r *rule, st *ruleState, ss []series, wss []catalog.Workspace,
	start, end time.Time, commit *catalog.EvaluationCommit) error {
	seen := map[string]bool{}
	observe := func(key string, dims []dimValue, value float64, breach bool) *seriesState {
		ser := st.Series[key]
		if ser == nil {
			ser = &seriesState{Dims: dims}
			st.Series[key] = ser
		}
		ser.LastValue = value
		ser.History = append(ser.History, breach)
		if len(ser.History) > r.Periods {
			ser.History = ser.History[len(ser.History)-r.Periods:]
		}
		return ser
	}
	var events []alertEvent
	for _, sr := range ss {
		seen[sr.key] = true
		breach := sr.breach
		if r.isLog() {
			breach = compare(r.Crit.Operator, sr.value, *r.Crit.Threshold)
		}
		ser := observe(sr.key, sr.dims, sr.value, breach)
		ser.Values, ser.Target = sr.values, sr.target
		events = append(events, s.transition(r, st, sr.key, ser, end)...)
	}
	// Series that returned no rows this window: a count of zero, otherwise
	// no data, which does not breach.
	keys := make([]string, 0, len(st.Series))
	for k := range st.Series {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if seen[k] {
			continue
		}
		ser := st.Series[k]
		v, breach := 0.0, false
		if r.isLog() && r.Crit.TimeAggregation == AggCount {
			breach = compare(r.Crit.Operator, 0, *r.Crit.Threshold)
		}
		observe(k, ser.Dims, v, breach)
		ser.Values = nil // a metric without data
		events = append(events, s.transition(r, st, k, ser, end)...)
		if !ser.Fired && !anyTrue(ser.History) {
			delete(st.Series, k) // quiet and resolved: forget it
		}
	}
	if len(events) == 0 {
		return nil
	}
	return s.buildEvents(ctx, r, st, events, wss, start, end, commit)
}

func anyTrue(b []bool) bool {
	for _, x := range b {
		if x {
			return true
		}
	}
	return false
}

func countTrue(b []bool) int {
	n := 0
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

// alertEvent is a monitor-condition change of one series.
type alertEvent struct {
	key      string
	ser      *seriesState
	resolved bool
}

// transition applies the failing-periods rule and the stateful (autoMitigate)
// or stateless firing to one series.
func (s *Service) transition(r *rule, st *ruleState, key string, ser *seriesState, end time.Time) []alertEvent {
	failing := countTrue(ser.History) >= r.MinFailing
	switch {
	case !r.AutoMitigate:
		// Stateless: every failing evaluation raises a new alert, which is
		// never resolved automatically.
		if failing && ser.History[len(ser.History)-1] {
			ser.Fired = false
			ser.AlertID = alertIDFor(r.ID, key, end, st.ClockEpoch)
			ser.FiredAt = end
			return []alertEvent{{key: key, ser: ser}}
		}
	case failing && !ser.Fired:
		ser.Fired = true
		ser.AlertID = alertIDFor(r.ID, key, end, st.ClockEpoch)
		ser.FiredAt = end
		return []alertEvent{{key: key, ser: ser}}
	case !failing && ser.Fired:
		ser.Fired = false
		return []alertEvent{{key: key, ser: ser, resolved: true}}
	}
	return nil
}

// alertIDFor derives an alert's GUID from its rule, series and firing
// window (its end and the rule's clock epoch, 0 until the clock was stepped
// back), so that re-evaluating a window after a crash names the same alert.
func alertIDFor(ruleID, key string, end time.Time, epoch int) string {
	name := "custos/alert/v1\x00" + strings.ToLower(ruleID) + "\x00" + key + "\x00" + end.UTC().Format(time.RFC3339Nano)
	if epoch > 0 {
		name += "\x00epoch=" + strconv.Itoa(epoch)
	}
	h := sha256.Sum256([]byte(name))
	b := h[:16]
	b[6] = b[6]&0x0f | 0x50 // version 5-style (name-based)
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b)
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

// notificationID is the idempotency key of one notification.
func notificationID(alertID, condition, groupID, receiverType, receiver string) string {
	h := sha256.Sum256([]byte("custos/notification/v1\x00" + alertID + "\x00" + condition + "\x00" +
		strings.ToLower(groupID) + "\x00" + receiverType + "\x00" + receiver))
	return hex.EncodeToString(h[:16])
}

// recordActivity writes an activity log record when a rule starts failing
// or recovers, so that a rule that silently stopped reading data is visible
// to auditors as well as in its evaluationStatus.
func (s *Service) recordActivity(ctx context.Context, r *rule, st *ruleState, end time.Time) {
	if s.opts.Activity == nil {
		return
	}
	rec := activity.Record{
		Time: s.now().UTC(), OperationName: "Microsoft.Insights/scheduledQueryRules/evaluate/action",
		Category: activity.CategoryAdministrative, Level: activity.LevelInformational, Status: activity.StatusSucceeded,
		ResourceID: r.ID, Properties: map[string]string{"windowEndTime": arm.WireTime(end)},
	}
	if r.Identity != nil {
		rec.Caller, rec.CallerType, rec.CallerName = r.Identity.PrincipalID, string(identity.KindServicePrincipal), "alert rule "+r.Name
	}
	if st.LastResult == resultFailed {
		rec.Level, rec.Status = activity.LevelError, activity.StatusFailed
		rec.Properties["error"] = truncate(st.LastError, 400)
	}
	if _, err := s.opts.Activity.Record(ctx, rec); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "record alert rule activity", slog.String("rule_id", r.ID), slog.Any("error", err))
	}
}

// schemaTTL bounds how long a workspace's table schemas are reused between
// evaluations: a table added to a workspace is visible to rules after it.
const schemaTTL = 10 * time.Second

type schemaEntry struct {
	ws      catalog.Workspace
	tables  kql.MapCatalog
	expires time.Time
}

// scopeSchema returns the workspace of a scope and its table schemas, from
// a short-lived cache shared by all rules (many rules query one workspace).
// Authorization is never cached here.
func (s *Service) scopeSchema(ctx context.Context, scope string) (catalog.Workspace, kql.MapCatalog, error) {
	e, err := s.scopeEntry(ctx, scope)
	if err != nil {
		return catalog.Workspace{}, nil, err
	}
	return e.ws, cloneCatalog(e.tables), nil
}

// scopeEntry returns the cached workspace and schemas of a scope (shared:
// callers must not change the schemas).
func (s *Service) scopeEntry(ctx context.Context, scope string) (schemaEntry, error) {
	k := strings.ToLower(scope)
	now := time.Now()
	s.schemaMu.Lock()
	if e, ok := s.schemas[k]; ok && now.Before(e.expires) {
		s.schemaMu.Unlock()
		return e, nil
	}
	s.schemaMu.Unlock()
	ws, err := s.cat.WorkspaceByResourceID(ctx, scope)
	if err != nil {
		return schemaEntry{}, err
	}
	tables, err := s.cat.WorkspaceTables(ctx, ws.CustomerID)
	if err != nil {
		return schemaEntry{}, fmt.Errorf("list workspace tables: %w", err)
	}
	cat := make(kql.MapCatalog, len(tables))
	for i := range tables {
		cat[tables[i].Name] = tables[i].QuerySchema()
	}
	s.schemaMu.Lock()
	if len(s.schemas) >= maxSchemaEntries {
		clear(s.schemas)
	}
	e := schemaEntry{ws: ws, tables: cat, expires: now.Add(schemaTTL)}
	s.schemas[k] = e
	s.schemaMu.Unlock()
	return e, nil
}

// cloneCatalog copies the cached schemas, so that no query can change what
// another one sees.
func cloneCatalog(c kql.MapCatalog) kql.MapCatalog {
	out := make(kql.MapCatalog, len(c))
	for name, sch := range c {
		out[name] = slices.Clone(sch)
	}
	return out
}

// maxSchemaEntries bounds the schema cache.
const maxSchemaEntries = 1024
