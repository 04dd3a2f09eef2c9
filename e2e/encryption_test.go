package e2e

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// plaintextHit is one needle found in one file.
type plaintextHit struct {
	Path, Needle, How string
	Offset            int
}

func (h plaintextHit) String() string {
	return fmt.Sprintf("%s: %q at %d (%s)", h.Path, h.Needle, h.Offset, h.How)
}

// zstdMagic and gzipMagic start compressed frames; the scanner also looks
// inside them, so data that was compressed but not encrypted is caught too.
var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b, 0x08}
)

// scanForPlaintext reads every byte of every regular file under root and
// reports each needle found verbatim, or inside a zstd or gzip frame.
func scanForPlaintext(t *testing.T, root string, needles []string) (files []string, bytesScanned int64, hits []plaintextHit) {
	t.Helper()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderMaxMemory(256<<20), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			// A temporary file may vanish between listing and reading.
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files = append(files, rel)
		bytesScanned += int64(len(data))
		find := func(buf []byte, how string) {
			for _, n := range needles {
				if i := bytes.Index(buf, []byte(n)); i >= 0 {
					hits = append(hits, plaintextHit{Path: rel, Needle: n, How: how, Offset: i})
				}
			}
		}
		find(data, "verbatim")
		for off := 0; ; {
			i := bytes.Index(data[off:], zstdMagic)
			if i < 0 {
				break
			}
			off += i
			if err := dec.Reset(bytes.NewReader(data[off:])); err == nil {
				out, _ := io.ReadAll(io.LimitReader(dec, 64<<20))
				find(out, fmt.Sprintf("in a zstd frame at %d", off))
			}
			off += len(zstdMagic)
		}
		for off := 0; ; {
			i := bytes.Index(data[off:], gzipMagic)
			if i < 0 {
				break
			}
			off += i
			if zr, err := gzip.NewReader(bytes.NewReader(data[off:])); err == nil {
				out, _ := io.ReadAll(io.LimitReader(zr, 64<<20))
				find(out, fmt.Sprintf("in a gzip stream at %d", off))
			}
			off += len(gzipMagic)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scan %s: %v", root, err)
	}
	return files, bytesScanned, hits
}

// TestScannerFindsPlaintext is the positive control for the at-rest scan:
// needles stored verbatim, zstd-compressed or gzip-compressed are found.
func TestScannerFindsPlaintext(t *testing.T) {
	dir := t.TempDir()
	needle := "needle-" + randHex(t, 8)
	var filler bytes.Buffer
	for i := range 2000 {
		fmt.Fprintf(&filler, "row %d %s lorem ipsum dolor sit amet\n", i, needle)
	}
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	z := enc.EncodeAll(filler.Bytes(), []byte("some header bytes"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(filler.Bytes())
	zw.Close()
	for name, data := range map[string][]byte{"plain": []byte("xx" + needle + "yy"), "zstd": z, "gzip": append([]byte("hdr"), gz.Bytes()...)} {
		if bytes.Contains(data, []byte(needle)) && name != "plain" {
			t.Fatalf("%s: compressed data holds the needle verbatim; the control proves nothing", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, _, hits := scanForPlaintext(t, dir, []string{needle})
	if len(files) != 3 || len(hits) != 3 {
		t.Fatalf("scanned %d files, hits %v; want 3 files and a hit in each", len(files), hits)
	}
}

func randHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestEncryptionAtRest ingests rows with a unique marker and distinctive
// values, and checks that no file under the data directory (WAL, parts,
// temporary files, keys, catalog, TLS material) holds any of them in
// plaintext: while the server runs (WAL and memtable), after a graceful stop
// (memtable flushed into parts) and after a restart. The server log and the
// catalog must not hold them either, nor the admin's client secret.
func TestEncryptionAtRest(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 120*time.Second)
	cols := []Column{
		{Name: "TimeGenerated", Type: "datetime"}, {Name: "Account", Type: "string"}, {Name: "Email", Type: "string"},
		{Name: "Card", Type: "string"}, {Name: "Note", Type: "string"}, {Name: "Amount", Type: "real"},
	}
	if err := c.CreateTable(ctx, "Secret_CL", cols); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "secret-dcr", "Custom-Secret", cols, "Secret_CL", "")
	if err != nil {
		t.Fatal(err)
	}

	// Every value embeds tok, so finding tok anywhere catches a leak of any
	// of them; the full values are needles too.
	tok := randHex(t, 6)
	marker := "CustosMarker" + tok
	needles := []string{tok, marker}
	const batches, perBatch = 3, 100
	now := time.Now().UTC().Add(-time.Minute)
	for b := range batches {
		recs := make([]map[string]any, perBatch)
		for i := range recs {
			n := b*perBatch + i
			acct := fmt.Sprintf("acct%s%04d", tok, n)
			email := fmt.Sprintf("jane.doe.%s.%d@example.org", tok, n)
			card := fmt.Sprintf("4111-%s-%04d", tok, n)
			recs[i] = map[string]any{
				"TimeGenerated": now.Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano),
				"Account":       acct, "Email": email, "Card": card,
				"Note":   fmt.Sprintf("payment by %s flagged: %s review the transfer to %s", email, marker, acct),
				"Amount": float64(n) + 0.25,
			}
			if n%37 == 0 {
				needles = append(needles, acct, email, card)
			}
		}
		body, _ := json.Marshal(recs)
		if err := c.Upload(ctx, rule, "Custom-Secret", body); err != nil {
			t.Fatalf("upload batch %d: %v", b, err)
		}
	}

	// The data is really there: the query API returns the marker.
	checkQueryable := func(when string) {
		t.Helper()
		_, rows, err := c.QueryRows(ctx, fmt.Sprintf(`Secret_CL | where Note has %q | project Note`, marker))
		if err != nil {
			t.Fatalf("%s: query: %v", when, err)
		}
		if len(rows) != batches*perBatch || !strings.Contains(fmt.Sprint(rows[0]...), marker) {
			t.Fatalf("%s: query returned %d rows (first %v); want %d rows carrying the marker", when, len(rows), rows[:min(1, len(rows))], batches*perBatch)
		}
	}
	checkNoPlaintext := func(when string) {
		t.Helper()
		files, n, hits := scanForPlaintext(t, s.DataDir(), needles)
		if len(hits) > 0 {
			t.Fatalf("%s: %d plaintext hits in the data directory, e.g. %v", when, len(hits), hits[:min(len(hits), 10)])
		}
		t.Logf("%s: %d files, %d bytes, no plaintext of %d needles", when, len(files), n, len(needles))
	}

	checkQueryable("running")
	checkNoPlaintext("running (WAL and memtable)")

	// More data, so that the shutdown flush takes a while; scan the data
	// directory over and over while it runs, to catch temporary files.
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := w; b < 24; b += 4 {
				recs := make([]map[string]any, 1000)
				for i := range recs {
					recs[i] = map[string]any{
						"TimeGenerated": now.Add(time.Duration(b*1000+i) * time.Microsecond).Format(time.RFC3339Nano),
						"Account":       fmt.Sprintf("bulk%s%d", tok, b*1000+i), "Email": "bulk@example.org", "Card": "",
						"Note":   fmt.Sprintf("bulk row %d %s lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor", b*1000+i, tok),
						"Amount": float64(i),
					}
				}
				body, _ := json.Marshal(recs)
				if err := c.Upload(ctx, rule, "Custom-Secret", body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("bulk upload: %v", err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- s.Stop(60 * time.Second) }()
	scans, tmpSeen := 0, map[string]bool{}
	for running := true; running; {
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		default:
		}
		files, _, hits := scanForPlaintext(t, s.DataDir(), needles)
		scans++
		if len(hits) > 0 {
			t.Fatalf("during the shutdown flush: %d plaintext hits, e.g. %v", len(hits), hits[:min(len(hits), 10)])
		}
		for _, f := range files {
			if strings.Contains(filepath.Base(f), ".tmp") || strings.Contains(filepath.Base(f), "tmp-") {
				tmpSeen[f] = true
			}
		}
	}
	t.Logf("during the shutdown flush: %d scans, %d temporary files seen, no plaintext", scans, len(tmpSeen))
	parts := findParts(t, s.DataDir(), "Secret_CL")
	if len(parts) == 0 {
		t.Fatal("no part file for Secret_CL after a graceful stop; the flush path is not covered")
	}
	checkNoPlaintext(fmt.Sprintf("stopped (%d parts)", len(parts)))

	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	checkQueryable("restarted")
	checkNoPlaintext("restarted")
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}

	logData, err := s.Log()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{tok, c.Admin.ClientSecret} {
		if i := bytes.Index(logData, []byte(n)); i >= 0 {
			t.Errorf("the server log holds an ingested value or the client secret at %d: %q", i, logData[max(0, i-200):min(len(logData), i+100)])
		}
	}
	// The client secret lives in admin.json (0600) and nowhere else.
	_, _, hits := scanForPlaintext(t, s.DataDir(), []string{c.Admin.ClientSecret})
	for _, h := range hits {
		if h.Path != "admin.json" {
			t.Errorf("client secret in plaintext outside admin.json: %v", h)
		}
	}
}

// findParts returns the part files of table under the store directory.
func findParts(t *testing.T, dataDir, table string) []string {
	t.Helper()
	var parts []string
	err := filepath.WalkDir(filepath.Join(dataDir, "store"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && strings.HasSuffix(path, ".part") && filepath.Base(filepath.Dir(path)) == table {
			parts = append(parts, path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return parts
}
