// Package logdata is the seeded generator of realistic ~1 KB JSON log
// records behind Custos's data-path benchmarks (bench/ingest, bench/query
// through bench/gen) and the store's package benchmarks. It imports only the
// standard library, so any package's tests can use it.
//
// A record has TimeGenerated, Host (500 values), Level (Info 80 %, Warning
// 12 %, Error 6 %, Debug 2 %), Service (24 values), Message (free text from a
// Zipf-distributed vocabulary, ~750 bytes), Latency (log-normal ms), User
// (Zipf over 1,000,000 users: the high-cardinality grouping column), Status
// (HTTP code) and RequestId (unique per record). About 3 records in a million
// carry RareTerm in their Message.
//
// Records are a pure function of (seed, batch index, batch size, total rows),
// so any client can produce any batch and reruns produce the same bytes.
package logdata

import (
	"encoding/hex"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"
)

// RareTerm appears in about RarePerMillion of a million messages; no
// vocabulary word equals it (the vocabulary uses other syllables).
const (
	RareTerm       = "quokkaquasar"
	RarePerMillion = 3
)

// Levels and their weights in percent.
var levelWeights = [...]struct {
	name   string
	weight int
}{{"Info", 80}, {"Warning", 12}, {"Error", 6}, {"Debug", 2}}

var services = [...]string{
	"checkout", "payments", "inventory", "search", "auth", "gateway", "orders", "shipping",
	"catalog", "recommendations", "notifications", "billing", "profile", "cart", "pricing", "reviews",
	"media", "analytics", "fraud", "support", "ledger", "tax", "email", "scheduler",
}

var paths = [...]string{"/api/v1/orders", "/api/v1/cart", "/api/v2/search", "/login", "/api/v1/payments",
	"/healthz", "/api/v1/users", "/api/v1/items", "/api/v3/recommendations", "/static/app.js"}

var syllables = [...]string{"ba", "de", "fi", "go", "lu", "ma", "ne", "po", "ri", "sa", "te", "vo", "zu", "ka", "mi", "ro",
	"ta", "ve", "li", "do", "an", "er", "in", "on", "ul", "es", "ar", "or"}

// Columns are the benchmark table's columns, in Azure's type names.
var Columns = []struct{ Name, Type string }{
	{"TimeGenerated", "datetime"}, {"Host", "string"}, {"Level", "string"}, {"Service", "string"},
	{"Message", "string"}, {"Latency", "real"}, {"User", "string"}, {"Status", "int"}, {"RequestId", "string"},
}

// Options configure a Generator.
type Options struct {
	Seed uint64
	// Rows is the total number of records; TimeGenerated spreads them
	// evenly over [End-Span, End).
	Rows int
	// End is the newest TimeGenerated; zero means the current hour's start.
	End time.Time
	// Span is the time range covered; zero means 24 h.
	Span time.Duration
}

// Generator produces records. Safe for concurrent use (it is immutable).
type Generator struct {
	o     Options
	vocab []string
	start time.Time
	// wordTable and userTable are samples of the Zipf distributions, indexed
	// by random bits: drawing from them costs one lookup.
	wordTable []uint16
	userTable []uint32
	// words[sep][i] is vocab[i] followed by seps[sep].
	words [len(seps)][]string
}

// seps are the separators after a message word; the k-th word (from 0) is
// followed by ". " when k%11 == 10, else by ", " when k%7 == 6, else by a
// space. sepCycle gives the index into seps for k modulo 77.
var seps = [...]string{" ", ", ", ". "}

var sepCycle = func() (c [77]uint8) {
	for k := range c {
		switch {
		case k%11 == 10:
			c[k] = 2
		case k%7 == 6:
			c[k] = 1
		}
	}
	return
}()

const (
	wordTableBits = 16
	userTableBits = 20
)

// New returns a generator.
func New(o Options) *Generator {
	if o.Rows <= 0 {
		o.Rows = 1
	}
	if o.Span <= 0 {
		o.Span = 24 * time.Hour
	}
	if o.End.IsZero() {
		o.End = time.Now().UTC().Truncate(time.Hour)
	}
	rng := rand.New(rand.NewPCG(o.Seed, 0x5eed))
	vocab := make([]string, 4000)
	for i := range vocab {
		n := 2 + rng.IntN(3)
		var w []byte
		for range n {
			w = append(w, syllables[rng.IntN(len(syllables))]...)
		}
		vocab[i] = string(w)
	}
	g := &Generator{o: o, vocab: vocab, start: o.End.Add(-o.Span)}
	for sep := range seps {
		g.words[sep] = make([]string, len(vocab))
		for i, w := range vocab {
			g.words[sep][i] = w + seps[sep]
		}
	}
	words := rand.NewZipf(rng, 1.05, 2, uint64(len(vocab)-1))
	g.wordTable = make([]uint16, 1<<wordTableBits)
	for i := range g.wordTable {
		g.wordTable[i] = uint16(words.Uint64())
	}
	users := rand.NewZipf(rng, 1.1, 4, 999_999)
	g.userTable = make([]uint32, 1<<userTableBits)
	for i := range g.userTable {
		g.userTable[i] = uint32(users.Uint64())
	}
	return g
}

// Options returns the generator's options with defaults applied.
func (g *Generator) Options() Options { return g.o }

// Batch is what one call to AppendBatch produced.
type Batch struct {
	Rows     int
	RawBytes int // bytes of JSON appended
	Rare     int // records whose Message has RareTerm
}

// AppendBatch appends a JSON array of the records [first, first+n) to dst.
// The records depend only on the seed and their indexes.
func (g *Generator) AppendBatch(dst []byte, first, n int) ([]byte, Batch) {
	b := Batch{Rows: n}
	start := len(dst)
	rng := rand.New(rand.NewPCG(g.o.Seed, uint64(first)))
	dst = slices.Grow(dst, n*1024)
	dst = append(dst, '[')
	for i := first; i < first+n; i++ {
		if i > first {
			dst = append(dst, ',')
		}
		var rare bool
		dst, rare = g.appendRecord(dst, i, rng)
		if rare {
			b.Rare++
		}
	}
	dst = append(dst, ']')
	b.RawBytes = len(dst) - start
	return dst, b
}

var (
	methods       = [...]string{"GET", "POST", "PUT", "DELETE"}
	errorStatuses = [...]int{500, 502, 503, 504}
	warnStatuses  = [...]int{400, 401, 403, 404, 429}
)

func (g *Generator) appendRecord(dst []byte, i int, rng *rand.Rand) ([]byte, bool) {
	ts := g.start.Add(time.Duration(float64(g.o.Span) * float64(i) / float64(g.o.Rows)))
	ts = ts.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
	w := rng.IntN(100)
	level := levelWeights[0].name
	for _, l := range levelWeights {
		if w < l.weight {
			level = l.name
			break
		}
		w -= l.weight
	}
	svc := services[rng.IntN(len(services))]
	host := rng.IntN(500)
	var ubuf [16]byte
	user := strconv.AppendUint(append(ubuf[:0], "user-"...), uint64(g.userTable[rng.Uint32()>>(32-userTableBits)]), 10)
	status := 200
	switch level {
	case "Error":
		status = errorStatuses[rng.IntN(len(errorStatuses))]
	case "Warning":
		status = warnStatuses[rng.IntN(len(warnStatuses))]
	}
	latency := math.Round(math.Exp(3+rng.NormFloat64())*1000) / 1000
	var id [16]byte
	for k := 0; k < 16; k += 8 {
		v := rng.Uint64()
		for j := range 8 {
			id[k+j] = byte(v >> (8 * j))
		}
	}
	rare := rng.IntN(1_000_000) < RarePerMillion

	dst = append(dst, `{"TimeGenerated":"`...)
	dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","Host":"`...)
	dst = strconv.AppendInt(append(dst, "web-"...), int64(host), 10)
	dst = append(dst, `","Level":"`...)
	dst = append(dst, level...)
	dst = append(dst, `","Service":"`...)
	dst = append(dst, svc...)
	dst = append(dst, `","Message":"`...)
	// Message: a request line, then free text up to ~750 bytes.
	msgStart := len(dst)
	dst = append(dst, methods[rng.IntN(len(methods))]...)
	dst = append(dst, ' ')
	dst = append(dst, svc...)
	dst = append(dst, paths[rng.IntN(len(paths))]...)
	dst = strconv.AppendInt(append(dst, '/'), int64(rng.IntN(100000)), 10)
	dst = strconv.AppendInt(append(dst, " status="...), int64(status), 10)
	dst = append(append(dst, " user="...), user...)
	dst = strconv.AppendFloat(append(dst, " latency_ms="...), latency, 'f', 3, 64)
	dst = hex.AppendEncode(append(dst, " trace="...), id[:8])
	dst = append(dst, ' ')
	rarePos := -1
	if rare {
		rarePos = 1 + rng.IntN(60)
	}
	for k := 0; len(dst)-msgStart < 700+rng.IntN(100); k++ {
		sep := sepCycle[k%len(sepCycle)]
		if k == rarePos {
			dst = append(dst, RareTerm...)
			dst = append(dst, seps[sep]...)
		} else {
			// The word and its separator in one append.
			dst = append(dst, g.words[sep][g.wordTable[rng.Uint32()>>(32-wordTableBits)]]...)
		}
	}
	if rare && rarePos >= 0 && !containsTerm(dst[msgStart:]) {
		// The message filled up before the rare term's position.
		dst = append(dst, RareTerm...)
	}
	dst = append(dst, `","Latency":`...)
	dst = strconv.AppendFloat(dst, latency, 'f', -1, 64)
	dst = append(dst, `,"User":"`...)
	dst = append(dst, user...)
	dst = append(dst, `","Status":`...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, `,"RequestId":"`...)
	dst = hex.AppendEncode(dst, id[:])
	dst = append(dst, `"}`...)
	return dst, rare
}

func containsTerm(b []byte) bool {
	t := RareTerm
	for i := 0; i+len(t) <= len(b); i++ {
		if string(b[i:i+len(t)]) == t {
			return true
		}
	}
	return false
}
