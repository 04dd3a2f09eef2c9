package query

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/catalog"
	"custos/internal/identity"
	"custos/internal/kql"
	"custos/internal/store"
)

// AuditRecord is one query run (or refused), as the LAQueryLogs table
// records it. QueryText is already redacted (kql.Redact).
type AuditRecord struct {
	Time                time.Time
	WorkspaceID         string // customerId of the queried workspace
	WorkspaceResourceID string // its ARM ID (the RequestTarget)
	Principal           identity.Principal
	ClientApp           string // x-ms-app
	QueryText           string
	Timespan            store.TimeRange
	ResponseCode        int
	Duration            time.Duration
	RowCount            int64
	Stats               ExecStats
	CorrelationID       string
	Conditional         bool // ABAC row conditions restricted the query
}

// Auditor receives one record per query, allowed and denied. It must not
// block for long and never fails the query; LAQueryLogs implements it.
type Auditor interface {
	AuditQuery(ctx context.Context, rec AuditRecord)
}

// maxAuditQueryText bounds the query text kept in an audit record.
const maxAuditQueryText = 64 << 10

// redactQuery returns the query text for the audit: obfuscated literals
// (h"...") replaced, bounded in size.
func redactQuery(q string) string {
	r := kql.Redact(q)
	if len(r) > maxAuditQueryText {
		r = r[:maxAuditQueryText]
	}
	return r
}

// queryThumbprint is a hash of the query's structure: the redacted text
// with runs of white space collapsed, so reformatting does not change it.
func queryThumbprint(redacted string) string {
	sum := sha256.Sum256([]byte(strings.Join(strings.Fields(redacted), " ")))
	return hex.EncodeToString(sum[:16])
}

// audit sends one record for a query on ws with the given outcome.
func (a *API) audit(ctx context.Context, r *http.Request, ws Workspace, body Body, tr store.TimeRange, code int, took time.Duration, out *Output, conditional bool) {
	if a.opts.Auditor == nil {
		return
	}
	p, _ := api.PrincipalFrom(ctx)
	rec := AuditRecord{
		Time: a.opts.Now().UTC(), WorkspaceID: ws.CustomerID, WorkspaceResourceID: ws.ResourceID, Principal: p,
		QueryText: redactQuery(body.Query), Timespan: tr, ResponseCode: code, Duration: took,
		CorrelationID: api.CorrelationIDFrom(ctx), Conditional: conditional,
	}
	if r != nil {
		rec.ClientApp = clientApp(r.Header)
	}
	if out != nil {
		rec.Stats = out.Stats
		if len(out.Tables) > 0 {
			for _, b := range out.Tables[0].Batches {
				if b != nil {
					rec.RowCount += int64(b.Len)
				}
			}
		}
	}
	a.opts.Auditor.AuditQuery(context.WithoutCancel(ctx), rec)
}

// clientApp is the x-ms-app header, bounded; "Unknown" when absent.
func clientApp(h http.Header) string {
	v := strings.TrimSpace(h.Get("x-ms-app"))
	if v == "" {
		return "Unknown"
	}
	return truncate(v, 128)
}

// statusOf is the HTTP status a query error is answered with.
func statusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	return toAPIError(err).Status
}

// AuditDenied records the query of a request the server refused before the
// handler ran (403: the caller lacks the query action on the workspace).
// It reads the query text from the body or the query string; a body that
// cannot be read or decoded is audited with an empty query text. The
// server calls it from its authorization step.
func (a *API) AuditDenied(r *http.Request, code int) {
	if a.opts.Auditor == nil {
		return
	}
	ctx := r.Context()
	if strings.HasSuffix(strings.ToLower(strings.TrimSuffix(r.URL.Path, "/")), "/$batch") {
		data, err := readBody(r, a.opts.MaxBodyBytes)
		if err != nil {
			return
		}
		r.Body = readCloser{bytes.NewReader(data)}
		var loose struct {
			Requests []struct {
				Workspace string `json:"workspace"`
				Body      *Body  `json:"body"`
			} `json:"requests"`
		}
		if json.Unmarshal(data, &loose) != nil {
			return
		}
		for _, it := range loose.Requests {
			ws, err := a.opts.Workspaces.WorkspaceByCustomerID(ctx, it.Workspace)
			if err != nil {
				continue
			}
			var b Body
			if it.Body != nil {
				b = *it.Body
			}
			a.audit(ctx, r, ws, b, store.TimeRange{}, code, 0, nil, false)
		}
		return
	}
	ws, err := a.opts.Workspaces.WorkspaceByCustomerID(ctx, r.PathValue("workspaceId"))
	if err != nil {
		return
	}
	var b Body
	if strings.HasSuffix(strings.ToLower(r.URL.Path), "/query") {
		if r.Method == http.MethodGet {
			b.Query = r.URL.Query().Get("query")
		} else if data, err := readBody(r, a.opts.MaxBodyBytes); err == nil {
			r.Body = readCloser{bytes.NewReader(data)}
			_ = json.Unmarshal(data, &b) // best effort: the text is what matters
		}
	}
	a.audit(ctx, r, ws, b, store.TimeRange{}, code, 0, nil, false)
}

// AuditDestinations says where the query audit of a workspace goes: the
// customer IDs of the workspaces named by its diagnostic settings with the
// Audit category enabled. *catalog.DB implements it.
type AuditDestinations interface {
	QueryAuditDestinations(ctx context.Context, workspaceResourceID string) ([]string, error)
}

// LAQueryLogsOptions configure NewLAQueryLogs.
type LAQueryLogsOptions struct {
	Destinations AuditDestinations // required
	Store        store.Appendable  // required
	Logger       *slog.Logger      // nil discards
}

// LAQueryLogs writes audit records as rows of the LAQueryLogs table of every
// destination workspace of the queried workspace's diagnostic settings. Safe
// for concurrent use.
type LAQueryLogs struct {
	dest   AuditDestinations
	st     store.Appendable
	log    *slog.Logger
	schema store.Schema
	// cache holds the destinations per queried workspace while the
	// catalog's generation stays (when Destinations is Generational): a
	// diagnostic setting that is created, changed or deleted is a catalog
	// write, so the next query sees it.
	cache *cachedCatalog
}

// LAQueryLogsTable is the audit table.
const LAQueryLogsTable = "LAQueryLogs"

// NewLAQueryLogs returns the LAQueryLogs auditor.
func NewLAQueryLogs(o LAQueryLogsOptions) (*LAQueryLogs, error) {
	if o.Destinations == nil || o.Store == nil {
		return nil, errors.New("query: LAQueryLogs needs destinations and a store")
	}
	schema, ok := catalog.StandardTableSchema(LAQueryLogsTable)
	if !ok {
		return nil, errors.New("query: the catalog has no LAQueryLogs table definition")
	}
	l := &LAQueryLogs{dest: o.Destinations, st: o.Store, log: o.Logger, schema: schema}
	if g, ok := o.Destinations.(Generational); ok {
		l.cache = newCachedCatalog(nil, g, time.Now)
	}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	return l, nil
}

var _ Auditor = (*LAQueryLogs)(nil)

// AuditQuery implements Auditor. Failures are logged, never returned: the
// audit must not change the query's answer.
func (l *LAQueryLogs) AuditQuery(ctx context.Context, rec AuditRecord) {
	if rec.WorkspaceResourceID == "" {
		return
	}
	dests, err := l.destinations(ctx, rec.WorkspaceResourceID)
	if err != nil {
		l.log.LogAttrs(ctx, slog.LevelError, "query audit: diagnostic settings unavailable", slog.Any("error", err))
		return
	}
	if len(dests) == 0 {
		return
	}
	b, err := l.Batch(rec)
	if err != nil {
		l.log.LogAttrs(ctx, slog.LevelError, "query audit: build record", slog.Any("error", err))
		return
	}
	for _, ws := range dests {
		if err := l.append(ctx, ws, b); err != nil {
			l.log.LogAttrs(ctx, slog.LevelError, "query audit: append to LAQueryLogs failed",
				slog.String("workspace", ws), slog.Any("error", err))
		}
	}
}

// destinations returns the audit destinations of a workspace, cached while
// the catalog's generation stays.
func (l *LAQueryLogs) destinations(ctx context.Context, workspaceResourceID string) ([]string, error) {
	if l.cache == nil {
		return l.dest.QueryAuditDestinations(ctx, workspaceResourceID)
	}
	d, err := cached(l.cache, l.cache.dests, workspaceResourceID, func() ([]string, error) {
		return l.dest.QueryAuditDestinations(ctx, workspaceResourceID)
	})
	return slices.Clone(d), err
}

func (l *LAQueryLogs) append(ctx context.Context, ws string, b *store.Batch) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	app, err := l.st.Appender(ctx, store.TableRef{WorkspaceID: ws, Table: LAQueryLogsTable})
	if err != nil {
		return err
	}
	if err := app.Append(b); err != nil {
		_ = app.Rollback()
		return err
	}
	return app.Commit(ctx)
}

// Batch renders rec as one LAQueryLogs row.
func (l *LAQueryLogs) Batch(rec AuditRecord) (*store.Batch, error) {
	p := rec.Principal
	ticks := store.TicksFromTime(rec.Time)
	reqCtx, _ := json.Marshal(map[string][]string{"workspaces": {rec.WorkspaceResourceID}})
	filters, _ := json.Marshal(map[string]any{})
	conditional := ""
	if rec.Conditional {
		conditional = "Applied"
	}
	vals := map[string]any{
		"TimeGenerated": ticks, "AADClientId": p.AppID, "AADEmail": "", "AADObjectId": p.ObjectID,
		"AADTenantId": p.TenantID, "ConditionalDataAccess": conditional, "CorrelationId": rec.CorrelationID,
		"IsBillableQuery": false, "IsWorkspaceInFailover": false, "QueryText": rec.QueryText,
		"QueryThumbprint": queryThumbprint(rec.QueryText), "RecordKind": "", "RequestClientApp": rec.ClientApp,
		"RequestContext": string(reqCtx), "RequestContextFilters": string(filters),
		"RequestTarget": rec.WorkspaceResourceID, "ResponseCode": int64(rec.ResponseCode),
		"ResponseDurationMs": float64(rec.Duration) / float64(time.Millisecond), "ResponseRowCount": rec.RowCount,
		"ScannedGB": 0.0, "SourceSystem": "", "StatsCPUTimeMs": float64(rec.Stats.Duration) / float64(time.Millisecond),
		"StatsDataProcessedKB": rec.Stats.BytesScanned / 1024, "StatsRegionCount": int64(1), "StatsWorkspaceCount": int64(1),
		"WorkspaceRegion": "",
	}
	if rec.ResponseCode != http.StatusOK {
		vals["StatsCPUTimeMs"], vals["StatsRegionCount"], vals["StatsWorkspaceCount"] = nil, nil, nil
	}
	var nulls = map[string]bool{}
	if rec.Timespan == (store.TimeRange{}) || rec.Timespan == store.AllTime {
		nulls["QueryTimeRangeStart"], nulls["QueryTimeRangeEnd"] = true, true
	} else {
		vals["QueryTimeRangeStart"], vals["QueryTimeRangeEnd"] = rec.Timespan.From, rec.Timespan.To
	}
	nulls["StatsDataProcessedStart"], nulls["StatsDataProcessedEnd"] = true, true
	vals[store.ColResourceID] = rec.WorkspaceResourceID
	schema := append(append(store.Schema(nil), l.schema...), store.Column{Name: store.ColResourceID, Type: store.TypeString})
	b := &store.Batch{Schema: schema, Len: 1}
	for _, c := range schema {
		v := &store.Vector{Type: c.Type}
		val, ok := vals[c.Name]
		if nulls[c.Name] || (ok && val == nil) {
			v.Nulls = []bool{true}
			val = zeroOf(c.Type)
		} else if !ok {
			return nil, fmt.Errorf("BUG: no value for LAQueryLogs column %s", c.Name)
		}
		if err := appendValue(v, val); err != nil {
			return nil, fmt.Errorf("LAQueryLogs column %s: %w", c.Name, err)
		}
		b.Cols = append(b.Cols, v)
	}
	return b, nil
}

func zeroOf(t store.ColumnType) any {
	switch t {
	case store.TypeBool:
		return false
	case store.TypeInt, store.TypeLong, store.TypeDatetime, store.TypeTimespan:
		return int64(0)
	case store.TypeReal, store.TypeDecimal:
		return 0.0
	default:
		return ""
	}
}

// appendValue appends one value of the vector's type.
func appendValue(v *store.Vector, val any) error {
	switch v.Type {
	case store.TypeBool:
		x, ok := val.(bool)
		if !ok {
			return fmt.Errorf("%T is not bool", val)
		}
		v.Bool = append(v.Bool, x)
	case store.TypeInt, store.TypeLong, store.TypeDatetime, store.TypeTimespan:
		x, ok := val.(int64)
		if !ok {
			return fmt.Errorf("%T is not an integer", val)
		}
		v.Int = append(v.Int, x)
	case store.TypeReal, store.TypeDecimal:
		x, ok := val.(float64)
		if !ok {
			return fmt.Errorf("%T is not real", val)
		}
		v.Real = append(v.Real, x)
	default:
		x, ok := val.(string)
		if !ok {
			return fmt.Errorf("%T is not a string", val)
		}
		v.Str = append(v.Str, x)
	}
	return nil
}
