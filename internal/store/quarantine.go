package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// Quarantine of corrupt parts.
//
// A part that fails its integrity check — its header or footer when the store
// opens, a column chunk when a query or a merge reads it — is quarantined: the
// file is moved (never deleted) to Dir/quarantine/<workspace>/<table>/, next to
// a JSON record saying what failed and when, and the part leaves the table's
// part list. The rest of the table keeps answering. Because the file is no
// longer in the table's directory, a restart does not admit it again; the
// record is read back at every Open.
//
// A query that runs with a PartialReport in its context (WithPartialReport;
// the Log Analytics query API does this) is told of every quarantined part of
// the tables and time range it reads, the ones it met itself and the ones
// quarantined before, so the API can answer with Azure's partial-result shape.
// A query without one fails with the *CorruptionError the first time (as
// before quarantine existed) and leaves the quarantined part out afterwards.
//
// The quarantined file stays encrypted with its part key, wrapped by the
// workspace key; the record names the workspace key ID, so an operator can
// move the file back into the table's directory (with the server stopped)
// once the cause is understood, or delete it. Dropping the workspace deletes
// its quarantined parts with it.

// quarantineDirName is the quarantine directory under Options.Dir.
const quarantineDirName = "quarantine"

// QuarantinedPart describes one quarantined part file.
type QuarantinedPart struct {
	WorkspaceID string `json:"workspaceId"`
	Table       string `json:"table"`
	PartID      string `json:"partId"`
	// Incarnation is the table incarnation the part belonged to: a record of
	// an earlier incarnation (the table was dropped and created again) no
	// longer concerns the table's queries.
	Incarnation string `json:"incarnation"`
	// Day is the UTC day of the part's rows.
	Day string `json:"day"`
	// Rows is the part's row count, or -1 when its metadata was unreadable.
	Rows int `json:"rows"`
	// MinTime and MaxTime bound the part's TimeGenerated when its metadata was
	// readable; otherwise they are the bounds of Day.
	MinTime time.Time `json:"minTimeGenerated"`
	MaxTime time.Time `json:"maxTimeGenerated"`
	// Reason is the integrity failure (never a file path).
	Reason string `json:"reason"`
	// DetectedBy is "open", "query", "merge" or "purge".
	DetectedBy    string    `json:"detectedBy"`
	QuarantinedAt time.Time `json:"quarantinedAt"`
	// KeyID is the ID of the key that wraps the workspace key: the part's
	// data key is wrapped by the workspace key in the part's own header.
	KeyID string `json:"keyId"`
	// MissedPurges counts the purges of the table that ran while the part was
	// in quarantine (or that found it corrupt): matching rows in it were not
	// purged, so a part restored into the table brings them back until the
	// purge is run again.
	MissedPurges int `json:"missedPurges,omitempty"`
	// File is the quarantined file's path relative to Options.Dir.
	File string `json:"file"`
}

// quarantine is the DB's record of quarantined parts.
type quarantine struct {
	mu      sync.Mutex                   // guards records; held while moving a file
	records map[string][]QuarantinedPart // by workspace ID "\x00" table
}

func quarKey(wsID, table string) string { return wsID + "\x00" + table }

// loadQuarantine reads the quarantine records under dir.
func (db *DB) loadQuarantine() {
	db.quar.mu.Lock()
	defer db.quar.mu.Unlock()
	db.quar.records = map[string][]QuarantinedPart{}
	root := filepath.Join(db.opts.Dir, quarantineDirName)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(path, ".json") {
			return nil
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var r QuarantinedPart
		if err := json.Unmarshal(raw, &r); err != nil {
			db.log.Warn("unreadable quarantine record", slog.String("file", path), slog.String("error", err.Error()))
			return nil
		}
		k := quarKey(r.WorkspaceID, r.Table)
		db.quar.records[k] = append(db.quar.records[k], r)
		return nil
	})
	if err != nil {
		db.log.Warn("reading the quarantine directory", slog.String("error", err.Error()))
	}
}

// QuarantinedParts lists every quarantined part, oldest first.
func (db *DB) QuarantinedParts() []QuarantinedPart {
	db.quar.mu.Lock()
	defer db.quar.mu.Unlock()
	var out []QuarantinedPart
	for _, rs := range db.quar.records {
		out = append(out, rs...)
	}
	slices.SortFunc(out, func(a, b QuarantinedPart) int {
		if c := a.QuarantinedAt.Compare(b.QuarantinedAt); c != 0 {
			return c
		}
		return strings.Compare(a.PartID, b.PartID)
	})
	return out
}

// moveToQuarantine moves a part file into the quarantine directory and
// writes its record. Callers hold db.quar.mu.
func (db *DB) moveToQuarantine(path string, r QuarantinedPart) error {
	dir := filepath.Join(db.opts.Dir, quarantineDirName, r.WorkspaceID, r.Table)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	dst := filepath.Join(dir, r.PartID+".part")
	rel, err := filepath.Rel(db.opts.Dir, dst)
	if err != nil {
		rel = dst
	}
	r.File = rel
	raw, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	// The record first: a crash between the two leaves a record of a part
	// that is still in the table (found again) rather than a silent move.
	if err := writeFileAtomic(filepath.Join(dir, r.PartID+".json"), raw); err != nil {
		return err
	}
	if err := os.Rename(path, dst); err != nil {
		os.Remove(filepath.Join(dir, r.PartID+".json"))
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return err
	}
	k := quarKey(r.WorkspaceID, r.Table)
	db.quar.records[k] = append(slices.DeleteFunc(db.quar.records[k], func(q QuarantinedPart) bool { return q.PartID == r.PartID }), r)
	db.m.partsQuarantined.Add(1)
	db.log.Error("corrupt part quarantined: the rest of the table keeps answering",
		slog.String("workspace_id", r.WorkspaceID), slog.String("table", r.Table), slog.String("part", r.PartID),
		slog.String("day", r.Day), slog.Int("rows", r.Rows), slog.String("detected_by", r.DetectedBy),
		slog.String("reason", r.Reason), slog.String("file", r.File))
	return nil
}

// corruptionReason renders a CorruptionError without its file path.
func corruptionReason(ce *CorruptionError) string {
	var b strings.Builder
	if ce.Block >= 0 {
		fmt.Fprintf(&b, "block %d ", ce.Block)
	}
	if ce.Column != "" {
		fmt.Fprintf(&b, "column %s ", ce.Column)
	}
	if b.Len() == 0 {
		b.WriteString("header or footer ")
	}
	b.WriteString("failed its integrity check: ")
	b.WriteString(ce.Err.Error())
	return b.String()
}

// dayOfPartID returns the day a part ID starts with ("20061231-...").
func dayOfPartID(id string) (time.Time, bool) {
	if len(id) < 8 {
		return time.Time{}, false
	}
	d, err := time.Parse("20060102", id[:8])
	return d, err == nil
}

// quarantineAtOpen quarantines a part file that failed to open while its
// table loads. It reports whether the file was moved; if not, the caller
// fails the open as before.
func (ws *workspace) quarantineAtOpen(table, incarnation, path string, err error) bool {
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Part == "" {
		return false
	}
	db := ws.db
	r := QuarantinedPart{WorkspaceID: ws.id, Table: table, PartID: ce.Part, Incarnation: incarnation, Rows: -1,
		Reason: corruptionReason(ce), DetectedBy: "open", QuarantinedAt: db.opts.Now().UTC(), KeyID: ws.kf.serviceKeyID}
	if d, ok := dayOfPartID(ce.Part); ok {
		r.Day = d.Format(time.DateOnly)
		r.MinTime, r.MaxTime = d, d.Add(24*time.Hour-100*time.Nanosecond)
	}
	db.quar.mu.Lock()
	defer db.quar.mu.Unlock()
	if merr := db.moveToQuarantine(path, r); merr != nil {
		db.log.Error("could not quarantine a corrupt part", slog.String("part", ce.Part), slog.String("error", merr.Error()))
		return false
	}
	return true
}

// quarantinePart takes a part whose chunk failed its integrity check out of
// its table and moves it to quarantine. It returns the record, and false if
// the part was no longer in the table (quarantined by a concurrent reader,
// merged or dropped meanwhile).
func (db *DB) quarantinePart(ctx context.Context, wsID, table string, partID string, ce *CorruptionError, by string) (QuarantinedPart, bool) {
	t, err := db.lookupTable(ctx, TableRef{WorkspaceID: wsID, Table: table})
	if err != nil {
		return QuarantinedPart{}, false
	}
	// t.mu before db.quar.mu, never both: Querier holds t.mu while it
	// reads the records.
	t.mu.Lock()
	var p *part
	for day, ps := range t.parts {
		i := slices.IndexFunc(ps, func(q *part) bool { return q.id == partID })
		if i < 0 {
			continue
		}
		p = ps[i]
		t.parts[day] = slices.Delete(slices.Clone(ps), i, i+1)
		if len(t.parts[day]) == 0 {
			delete(t.parts, day)
		}
		break
	}
	inc := t.meta.Incarnation
	t.mu.Unlock()
	if p == nil {
		return QuarantinedPart{}, false
	}
	r := QuarantinedPart{WorkspaceID: wsID, Table: table, PartID: p.id, Incarnation: inc, Rows: p.meta.rows,
		Day:     TimeFromTicks(p.meta.day * TicksPerDay).Format(time.DateOnly),
		MinTime: TimeFromTicks(p.meta.minT), MaxTime: TimeFromTicks(p.meta.maxT),
		Reason: corruptionReason(ce), DetectedBy: by, QuarantinedAt: db.opts.Now().UTC(), KeyID: t.ws.kf.serviceKeyID}
	db.quar.mu.Lock()
	err = db.moveToQuarantine(p.path, r)
	db.quar.mu.Unlock()
	if err != nil {
		// The part stays out of this process's view; the next Open finds
		// it in the table directory, fails its check and tries again.
		db.log.Error("could not move a corrupt part to quarantine; it is left out until restart",
			slog.String("part", p.id), slog.String("error", err.Error()))
	}
	p.release() // the table's reference; the file is not deleted (not obsolete)
	return r, true
}

// quarantineFromErr quarantines the part a merge or purge of t met corrupt.
func (db *DB) quarantineFromErr(ctx context.Context, t *table, err error, by string) {
	var ce *CorruptionError
	if errors.As(err, &ce) && ce.Part != "" {
		db.quarantinePart(ctx, t.ws.id, t.name, ce.Part, ce, by)
	}
}

// notePurgeMissed counts a purge as missed in every quarantine record of t's
// current incarnation, rewriting each record file, and returns the records.
func (db *DB) notePurgeMissed(t *table) []QuarantinedPart {
	t.mu.RLock()
	inc := t.meta.Incarnation
	t.mu.RUnlock()
	db.quar.mu.Lock()
	defer db.quar.mu.Unlock()
	var out []QuarantinedPart
	rs := db.quar.records[quarKey(t.ws.id, t.name)]
	for i := range rs {
		r := &rs[i]
		if r.Incarnation != inc {
			continue
		}
		r.MissedPurges++
		if raw, err := json.MarshalIndent(r, "", "  "); err != nil {
			db.log.Error("quarantine record", slog.String("part", r.PartID), slog.String("error", err.Error()))
		} else if err := writeFileAtomic(filepath.Join(db.opts.Dir, strings.TrimSuffix(r.File, ".part")+".json"), raw); err != nil {
			// The count in memory stays right until a restart; the log says
			// which part missed the purge.
			db.log.Error("could not record a missed purge in a quarantine record", slog.String("part", r.PartID), slog.String("error", err.Error()))
		}
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b QuarantinedPart) int { return strings.Compare(a.PartID, b.PartID) })
	return out
}

// PartialReport collects, for one query, the data it could not read: the
// quarantined parts of the tables and time ranges it touched. Safe for
// concurrent use.
type PartialReport struct {
	mu    sync.Mutex
	parts []QuarantinedPart
}

type partialReportKey struct{}

// WithPartialReport returns a context under which the store's Queriers skip
// quarantined and newly corrupt parts, recording them in the returned report,
// instead of failing.
func WithPartialReport(ctx context.Context) (context.Context, *PartialReport) {
	r := &PartialReport{}
	return context.WithValue(ctx, partialReportKey{}, r), r
}

func partialReportFrom(ctx context.Context) *PartialReport {
	r, _ := ctx.Value(partialReportKey{}).(*PartialReport)
	return r
}

func (r *PartialReport) add(q QuarantinedPart) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, have := range r.parts {
		if have.WorkspaceID == q.WorkspaceID && have.Table == q.Table && have.PartID == q.PartID {
			return
		}
	}
	r.parts = append(r.parts, q)
}

// Skipped returns the quarantined parts the query did not read, by table and
// part ID. Empty means the answer is complete.
func (r *PartialReport) Skipped() []QuarantinedPart {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.parts)
	slices.SortFunc(out, func(a, b QuarantinedPart) int {
		return strings.Compare(a.Table+"\x00"+a.PartID, b.Table+"\x00"+b.PartID)
	})
	return out
}

// reportQuarantined tells the query's PartialReport, if any, of t's
// quarantined parts that overlap tr. Callers hold t.mu (read).
func (db *DB) reportQuarantined(ctx context.Context, t *table, tr TimeRange) {
	rep := partialReportFrom(ctx)
	if rep == nil || tr.From >= tr.To {
		return
	}
	db.quar.mu.Lock()
	rs := slices.Clone(db.quar.records[quarKey(t.ws.id, t.name)]) // moveToQuarantine edits in place
	db.quar.mu.Unlock()
	for _, r := range rs {
		if r.Incarnation != t.meta.Incarnation {
			continue
		}
		if TicksFromTime(r.MaxTime) < tr.From || TicksFromTime(r.MinTime) >= tr.To {
			continue
		}
		rep.add(r)
	}
}

// runOrSkip runs one task; a part chunk that fails its integrity check gets
// its part quarantined, and, when the query carries a PartialReport, the
// task yields nothing instead of failing the query.
func (it *iterator) runOrSkip(tk *task, buf *[]byte) (*Batch, error) {
	b, err := it.run(tk, buf)
	if err == nil || tk.p == nil {
		return b, err
	}
	var ce *CorruptionError
	if !errors.As(err, &ce) || ce.Part != tk.p.id {
		return b, err
	}
	db := it.q.db
	r, moved := db.quarantinePart(it.ctx, it.q.wsID, it.q.table, tk.p.id, ce, "query")
	rep := partialReportFrom(it.ctx)
	if rep == nil {
		return nil, err // Next reports it
	}
	db.reportCorruption(err)
	if !moved {
		r = QuarantinedPart{WorkspaceID: it.q.wsID, Table: it.q.table, PartID: tk.p.id, Rows: tk.p.meta.rows,
			Day:     TimeFromTicks(tk.p.meta.day * TicksPerDay).Format(time.DateOnly),
			MinTime: TimeFromTicks(tk.p.meta.minT), MaxTime: TimeFromTicks(tk.p.meta.maxT), Reason: corruptionReason(ce), DetectedBy: "query"}
	}
	rep.add(r)
	return nil, nil
}

// removeWorkspaceQuarantine deletes a dropped workspace's quarantined parts.
func (db *DB) removeWorkspaceQuarantine(wsID string) error {
	db.quar.mu.Lock()
	defer db.quar.mu.Unlock()
	for k := range db.quar.records {
		if strings.HasPrefix(k, wsID+"\x00") {
			delete(db.quar.records, k)
		}
	}
	return os.RemoveAll(filepath.Join(db.opts.Dir, quarantineDirName, wsID))
}

// WriteMetrics writes the store's counters in the Prometheus text exposition
// format (custos_store_*), for the server's /metrics.
func (db *DB) WriteMetrics(w io.Writer) error {
	s := db.Stats()
	bw := bufio.NewWriter(w)
	for _, m := range []struct {
		name, kind, help string
		v                uint64
	}{
		{"custos_store_corruption_errors_total", "counter", "Integrity-check failures met by queries, opens and merges.", s.CorruptionErrors},
		{"custos_store_parts_quarantined_total", "counter", "Corrupt parts moved to quarantine since the store opened.", s.PartsQuarantined},
		{"custos_store_quarantined_parts", "gauge", "Parts in quarantine now (all workspaces).", uint64(len(db.QuarantinedParts()))},
		{"custos_store_rows_committed_total", "counter", "Rows committed.", s.RowsCommitted},
		{"custos_store_commits_total", "counter", "Commits (one per accepted upload).", s.Commits},
		{"custos_store_wal_syncs_total", "counter", "WAL fsyncs.", s.WALSyncs},
		{"custos_store_parts_flushed_total", "counter", "Parts written by memtable flushes.", s.PartsFlushed},
		{"custos_store_parts_merged_total", "counter", "Parts written by merges.", s.PartsMerged},
		{"custos_store_parts_expired_total", "counter", "Parts deleted by retention.", s.PartsExpired},
		{"custos_store_key_revocations_total", "counter", "Times a customer-managed key started refusing.", s.KeyRevocations},
		{"custos_store_rows_purged_total", "counter", "Rows removed by purges.", s.RowsPurged},
	} {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n%s %d\n", m.name, m.help, m.name, m.kind, m.name, m.v)
	}
	return bw.Flush()
}
