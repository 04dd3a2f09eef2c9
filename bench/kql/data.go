package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"custos/bench/logdata"
	"custos/internal/store"
)

// The data set: three tables in one workspace, generated in columnar form
// (no JSON) with the distributions of bench/logdata, so a 10 M-row load
// takes minutes rather than the ingestion API's hours on a shared machine.
const (
	workspaceID = "3f6c1b7e-2a9d-4e8f-b1c5-0d7a9e6f4c21"
	logsTable   = "Logs_CL"
	usersTable  = "Users_CL"
	tagsTable   = "Tags_CL"

	usersRows   = 100_000   // right side of the join
	sessions    = 1_000_000 // distinct SessionId values (the 1 M-group key)
	joinLeft    = 1_000_000 // rows of the join's left side
	tagsPerRow  = 10
	genBatch    = 65_536
	dataVersion = 1
)

// day is the UTC day all rows fall in: one partition.
var day = time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)

var logsSchema = store.Schema{
	{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Host", Type: store.TypeString},
	{Name: "Level", Type: store.TypeString}, {Name: "Service", Type: store.TypeString},
	{Name: "Message", Type: store.TypeString}, {Name: "Latency", Type: store.TypeReal},
	{Name: "User", Type: store.TypeString}, {Name: "Status", Type: store.TypeInt},
	{Name: "RequestId", Type: store.TypeString}, {Name: "SessionId", Type: store.TypeString},
}

var usersSchema = store.Schema{
	{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "User", Type: store.TypeString},
	{Name: "Team", Type: store.TypeString}, {Name: "Country", Type: store.TypeString},
}

var tagsSchema = store.Schema{
	{Name: "TimeGenerated", Type: store.TypeDatetime}, {Name: "Id", Type: store.TypeLong},
	{Name: "Tags", Type: store.TypeDynamic},
}

// dataInfo describes a loaded data set; it is kept in the data directory so a
// reused data set is checked against the same expectations.
type dataInfo struct {
	Version      int `json:"version"`
	Rows         int `json:"rows"`
	Seed         uint64
	TagRows      int   `json:"tagRows"`
	MessageBytes int   `json:"messageBytes"`
	Rare         int   `json:"rare"`        // rows whose Message has logdata.RareTerm
	JoinMatches  int   `json:"joinMatches"` // left rows (first joinLeft) whose User is in Users_CL
	RawBytes     int64 `json:"rawBytes"`    // bytes of the generated values (no JSON)
	LoadSeconds  float64
}

var (
	levels = [...]struct {
		name   string
		weight int
	}{{"Info", 80}, {"Warning", 12}, {"Error", 6}, {"Debug", 2}}
	services = [...]string{
		"checkout", "payments", "inventory", "search", "auth", "gateway", "orders", "shipping",
		"catalog", "recommendations", "notifications", "billing", "profile", "cart", "pricing", "reviews",
		"media", "analytics", "fraud", "support", "ledger", "tax", "email", "scheduler",
	}
	paths = [...]string{"/api/v1/orders", "/api/v1/cart", "/api/v2/search", "/login", "/api/v1/payments",
		"/healthz", "/api/v1/users", "/api/v1/items", "/api/v3/recommendations", "/static/app.js"}
	syllables = [...]string{"ba", "de", "fi", "go", "lu", "ma", "ne", "po", "ri", "sa", "te", "vo", "zu", "ka", "mi", "ro",
		"ta", "ve", "li", "do", "an", "er", "in", "on", "ul", "es", "ar", "or"}
	methods       = [...]string{"GET", "POST", "PUT", "DELETE"}
	errorStatuses = [...]int64{500, 502, 503, 504}
	warnStatuses  = [...]int64{400, 401, 403, 404, 429}
	countries     = [...]string{"DE", "FR", "US", "JP", "BR", "IN", "GB", "NL", "SE", "ES"}
)

// generator produces the rows; immutable, so batches are generated in parallel.
type generator struct {
	rows, msgBytes int
	seed           uint64
	vocab          []string
	wordTable      []uint16 // Zipf samples over vocab
	userTable      []uint32 // Zipf samples over 1 M users
	step           int64    // ticks between consecutive rows
}

func newGenerator(rows, msgBytes int, seed uint64) *generator {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	g := &generator{rows: rows, msgBytes: msgBytes, seed: seed, vocab: make([]string, 4000)}
	for i := range g.vocab {
		var w []byte
		for range 2 + rng.IntN(3) {
			w = append(w, syllables[rng.IntN(len(syllables))]...)
		}
		g.vocab[i] = string(w)
	}
	words := rand.NewZipf(rng, 1.05, 2, uint64(len(g.vocab)-1))
	g.wordTable = make([]uint16, 1<<16)
	for i := range g.wordTable {
		g.wordTable[i] = uint16(words.Uint64())
	}
	users := rand.NewZipf(rng, 1.1, 4, 999_999)
	g.userTable = make([]uint32, 1<<20)
	for i := range g.userTable {
		g.userTable[i] = uint32(users.Uint64())
	}
	g.step = stepFor(rows)
	return g
}

// stepFor is the ticks (100 ns) between consecutive rows of a rows-row day.
func stepFor(rows int) int64 { return max(1, int64(24*time.Hour/100)/int64(max(rows, 1))) }

// batchStats is what one generated batch of Logs_CL contributes to dataInfo.
type batchStats struct {
	rare, joinMatches int
	raw               int64
}

// logsBatch generates rows [first, first+n) of Logs_CL. Row i's
// TimeGenerated lies in [day + i·step, day + (i+1)·step), so the first k
// rows are exactly those before day + k·step.
func (g *generator) logsBatch(first, n int) (*store.Batch, batchStats) {
	rng := rand.New(rand.NewPCG(g.seed, uint64(first)+1))
	var st batchStats
	b := &store.Batch{Schema: logsSchema, Len: n}
	tg := &store.Vector{Type: store.TypeDatetime, Int: make([]int64, n)}
	host := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	lvl := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	svc := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	msg := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	lat := &store.Vector{Type: store.TypeReal, Real: make([]float64, n)}
	usr := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	status := &store.Vector{Type: store.TypeInt, Int: make([]int64, n)}
	reqID := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	sess := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	b.Cols = []*store.Vector{tg, host, lvl, svc, msg, lat, usr, status, reqID, sess}
	start := store.TicksFromTime(day)
	var buf []byte
	for k := range n {
		i := first + k
		tg.Int[k] = start + int64(i)*g.step + rng.Int64N(g.step)
		w := rng.IntN(100)
		level := levels[0].name
		for _, l := range levels {
			if w < l.weight {
				level = l.name
				break
			}
			w -= l.weight
		}
		s := services[rng.IntN(len(services))]
		uid := g.userTable[rng.Uint32()>>12]
		user := "user-" + strconv.Itoa(int(uid))
		code := int64(200)
		switch level {
		case "Error":
			code = errorStatuses[rng.IntN(len(errorStatuses))]
		case "Warning":
			code = warnStatuses[rng.IntN(len(warnStatuses))]
		}
		latency := math.Round(math.Exp(3+rng.NormFloat64())*1000) / 1000
		var id [16]byte
		for j := 0; j < 16; j += 8 {
			v := rng.Uint64()
			for q := range 8 {
				id[j+q] = byte(v >> (8 * q))
			}
		}
		rare := rng.IntN(1_000_000) < logdata.RarePerMillion

		buf = append(buf[:0], methods[rng.IntN(len(methods))]...)
		buf = append(buf, ' ')
		buf = append(buf, s...)
		buf = append(buf, paths[rng.IntN(len(paths))]...)
		buf = strconv.AppendInt(append(buf, '/'), int64(rng.IntN(100000)), 10)
		buf = strconv.AppendInt(append(buf, " status="...), code, 10)
		buf = append(append(buf, " user="...), user...)
		buf = strconv.AppendFloat(append(buf, " latency_ms="...), latency, 'f', 3, 64)
		buf = hex.AppendEncode(append(buf, " trace="...), id[:8])
		buf = append(buf, ' ')
		if rare {
			buf = append(buf, logdata.RareTerm...)
			buf = append(buf, ' ')
			st.rare++
		}
		target := g.msgBytes - 50 + rng.IntN(100)
		for j := 0; len(buf) < target; j++ {
			buf = append(buf, g.vocab[g.wordTable[rng.Uint32()>>16]]...)
			switch {
			case j%11 == 10:
				buf = append(buf, ". "...)
			case j%7 == 6:
				buf = append(buf, ", "...)
			default:
				buf = append(buf, ' ')
			}
		}
		tgHost := "web-" + strconv.Itoa(rng.IntN(500))
		host.Str[k] = tgHost
		lvl.Str[k] = level
		svc.Str[k] = s
		msg.Str[k] = string(buf)
		lat.Real[k] = latency
		usr.Str[k] = user
		status.Int[k] = code
		reqID.Str[k] = hex.EncodeToString(id[:])
		sess.Str[k] = fmt.Sprintf("sess-%07d", (uint64(i)*7919)%sessions)
		if i < joinLeft && uid < usersRows {
			st.joinMatches++
		}
		st.raw += int64(8 + len(tgHost) + len(level) + len(s) + len(buf) + 8 + len(user) + 4 + 32 + 12)
	}
	return b, st
}

func usersBatch(first, n int) *store.Batch {
	b := &store.Batch{Schema: usersSchema, Len: n}
	tg := &store.Vector{Type: store.TypeDatetime, Int: make([]int64, n)}
	u := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	team := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	c := &store.Vector{Type: store.TypeString, Str: make([]string, n)}
	start := store.TicksFromTime(day)
	for k := range n {
		i := first + k
		tg.Int[k] = start + int64(i)
		u.Str[k] = "user-" + strconv.Itoa(i)
		team.Str[k] = "team-" + strconv.Itoa(i%50)
		c.Str[k] = countries[i%len(countries)]
	}
	b.Cols = []*store.Vector{tg, u, team, c}
	return b
}

func tagsBatch(seed uint64, first, n int) *store.Batch {
	rng := rand.New(rand.NewPCG(seed, uint64(first)+0x7a65))
	b := &store.Batch{Schema: tagsSchema, Len: n}
	tg := &store.Vector{Type: store.TypeDatetime, Int: make([]int64, n)}
	id := &store.Vector{Type: store.TypeLong, Int: make([]int64, n)}
	tags := &store.Vector{Type: store.TypeDynamic, Str: make([]string, n)}
	start := store.TicksFromTime(day)
	var buf []byte
	for k := range n {
		i := first + k
		tg.Int[k] = start + int64(i)*1000
		id.Int[k] = int64(i)
		buf = append(buf[:0], '[')
		for j := range tagsPerRow {
			if j > 0 {
				buf = append(buf, ',')
			}
			buf = strconv.AppendInt(append(buf, `"tag-`...), int64(rng.IntN(1000)), 10)
			buf = append(buf, '"')
		}
		tags.Str[k] = string(append(buf, ']'))
	}
	b.Cols = []*store.Vector{tg, id, tags}
	return b
}

// load generates the three tables into db. Two goroutines generate Logs_CL
// batches while the caller appends them in order; every batch is one commit.
func load(ctx context.Context, db *store.DB, info *dataInfo, progress func(done int)) error {
	ensure := []struct {
		name   string
		schema store.Schema
	}{{logsTable, logsSchema}, {usersTable, usersSchema}, {tagsTable, tagsSchema}}
	for _, t := range ensure {
		if err := db.EnsureTable(ctx, store.TableRef{WorkspaceID: workspaceID, Table: t.name}, t.schema, 3650); err != nil {
			return fmt.Errorf("create table %s: %w", t.name, err)
		}
	}
	appendBatch := func(table string, b *store.Batch) error {
		a, err := db.Appender(ctx, store.TableRef{WorkspaceID: workspaceID, Table: table})
		if err != nil {
			return err
		}
		if err := a.Append(b); err != nil {
			_ = a.Rollback()
			return fmt.Errorf("append to %s: %w", table, err)
		}
		if err := a.Commit(ctx); err != nil {
			return fmt.Errorf("commit to %s: %w", table, err)
		}
		return nil
	}
	for first := 0; first < usersRows; first += genBatch {
		if err := appendBatch(usersTable, usersBatch(first, min(genBatch, usersRows-first))); err != nil {
			return err
		}
	}
	for first := 0; first < info.TagRows; first += genBatch {
		if err := appendBatch(tagsTable, tagsBatch(info.Seed, first, min(genBatch, info.TagRows-first))); err != nil {
			return err
		}
	}

	g := newGenerator(info.Rows, info.MessageBytes, info.Seed)
	type result struct {
		b  *store.Batch
		st batchStats
	}
	nBatches := (info.Rows + genBatch - 1) / genBatch
	slots := make([]chan result, nBatches)
	for i := range slots {
		slots[i] = make(chan result, 1)
	}
	next := make(chan int)
	var wg sync.WaitGroup
	gctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bi := range next {
				first := bi * genBatch
				b, st := g.logsBatch(first, min(genBatch, info.Rows-first))
				select {
				case slots[bi] <- result{b, st}:
				case <-gctx.Done():
					return
				}
			}
		}()
	}
	// sem bounds the batches generated but not yet appended (memory).
	sem := make(chan struct{}, 4)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(next)
		for bi := range nBatches {
			select {
			case sem <- struct{}{}:
			case <-gctx.Done():
				return
			}
			select {
			case next <- bi:
			case <-gctx.Done():
				return
			}
		}
	}()
	for bi := range nBatches {
		var r result
		select {
		case r = <-slots[bi]:
		case <-ctx.Done():
			return ctx.Err()
		}
		if err := appendBatch(logsTable, r.b); err != nil {
			return err
		}
		<-sem
		info.Rare += r.st.rare
		info.JoinMatches += r.st.joinMatches
		info.RawBytes += r.st.raw
		if progress != nil {
			progress(bi*genBatch + r.b.Len)
		}
	}
	return nil
}
