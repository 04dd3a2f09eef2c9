package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"custos/bench/logdata"
)

// TestTokenChunkBloomDifferential: the bloom of a token-encoded string
// chunk, built from the hashes the tokenizer collects as it adds tokens
// (analyzeHashing, bloomOfHashes), is bit for bit the filter buildBloom makes
// from the rows' text — on bench/gen messages, on text whose words differ
// only in case (tokens distinct, hashes equal), and on text with bytes
// outside ASCII; every token of every row is found in it, and the chunk's
// encoding still matches the reference tokenizer (TestTokenEncoderMatchesReference).
func TestTokenChunkBloomDifferential(t *testing.T) {
	g := logdata.New(logdata.Options{Seed: 3, Rows: 10_000, End: time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)})
	js, _ := g.AppendBatch(nil, 0, 4096)
	var recs []struct{ Message string }
	if err := json.Unmarshal(js, &recs); err != nil {
		t.Fatal(err)
	}
	var gen []string
	for _, r := range recs {
		gen = append(gen, r.Message)
	}
	r := rand.New(rand.NewPCG(5, 6))
	words := []string{"Error", "error", "ERROR", "eRRor", "timeout", "TimeOut", "quokkaquasar", "x", "ab", "A1", "übergröße", "naïve", "日本語", "a-b_c", "1234567890123", "Zz9"}
	seps := []string{" ", ", ", ". ", "\t", "::", " — ", "=", "\\n"}
	var mixed []string
	for range 3000 {
		var sb strings.Builder
		for k := range 4 + r.IntN(20) {
			if k > 0 {
				sb.WriteString(seps[r.IntN(len(seps))])
			}
			w := words[r.IntN(len(words))]
			if r.IntN(3) == 0 {
				w = fmt.Sprintf("%s%d", w, r.IntN(5000))
			}
			sb.WriteString(w)
		}
		mixed = append(mixed, sb.String())
	}
	for _, c := range []struct {
		name string
		ss   []string
	}{{"gen", gen}, {"mixed-case", mixed}, {"gen-head", gen[:40]}} {
		t.Run(c.name, func(t *testing.T) {
			v := &Vector{Type: TypeString, Str: c.ss}
			raw, bl, split := encodeChunk(nil, v, 0, len(c.ss), true, true)
			if split == 0 {
				t.Fatalf("not token-encoded (%d bytes)", len(raw))
			}
			want := buildBloom(c.ss, nil, false)
			if !slices.Equal(bl, want) {
				t.Fatalf("bloom of %d words differs from buildBloom's %d words", len(bl), len(want))
			}
			for i, s := range c.ss {
				forEachTokenHash(s, func(h uint64) {
					if !bl.has(h) {
						t.Fatalf("row %d: a token of %q is not in the bloom", i, s)
					}
				})
			}
			checkTokenEncoding(t, c.name, c.ss)
			// Without a bloom the encoding is the same bytes.
			raw2, bl2, _ := encodeChunk(nil, v, 0, len(c.ss), true, false)
			if !slices.Equal(raw, raw2) || bl2 != nil {
				t.Fatal("the encoding depends on whether a bloom is built")
			}
		})
	}
}

// TestMergeLogsKind: a merge that re-encodes its rows says so at Info (with
// its table, parts and rows), so a soak's server log shows how often merges
// re-tokenize; a copying merge logs at Debug only.
func TestMergeLogsKind(t *testing.T) {
	for _, c := range []struct {
		name      string
		blockRows int
		batch     int
		want      string
		level     string
	}{
		{"reencode", 0, 10, "store merge re-encoded parts", "INFO"},
		{"copy", 64, 256, "store merge copied parts", "DEBUG"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			env := newEnv(t)
			db := env.open(t, func(o *Options) {
				o.MaxPartsPerDay = 2
				o.BlockRows = c.blockRows
				o.Logger = slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			})
			defer db.Close()
			ctx := context.Background()
			ref := TableRef{WorkspaceID: testWS, Table: "Log_CL"}
			if err := db.EnsureTable(ctx, ref, allTypesSchema[1:], 0); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				commit(t, db, ref, allTypesBatch(i*c.batch, c.batch))
				if err := db.Flush(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Merge(ctx); err != nil {
				t.Fatal(err)
			}
			var line string
			for _, l := range strings.Split(buf.String(), "\n") {
				if strings.Contains(l, "store merge") {
					line = l
				}
			}
			wantRows := fmt.Sprintf("rows=%d", 3*c.batch)
			if !strings.Contains(line, "level="+c.level) || !strings.Contains(line, `msg="`+c.want+`"`) ||
				!strings.Contains(line, "table=Log_CL") || !strings.Contains(line, "parts=3") || !strings.Contains(line, wantRows) {
				t.Fatalf("merge log line %q; want %s %q with table, parts=3, %s", line, c.level, c.want, wantRows)
			}
		})
	}
}
