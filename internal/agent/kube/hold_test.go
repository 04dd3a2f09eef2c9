package kube

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"custos/internal/agent/tail"
)

// holdRig tails a pod log directory into a LogCollector the way the agent
// does (AddAt, Pending, Rewinds, Commit with Holds) and can "crash": drop
// both without a last commit and start again from the checkpoint.
type holdRig struct {
	t     *testing.T
	root  string
	md    *lookup
	now   time.Time
	tl    *tail.Tailer
	lc    *LogCollector
	got   map[string]int
	order []string
}

func newHoldRig(t *testing.T) *holdRig {
	r := &holdRig{t: t, root: t.TempDir(), md: &lookup{pods: map[string]PodMetadata{}},
		now: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC), got: map[string]int{}}
	r.start()
	return r
}

func (r *holdRig) start() {
	tl, err := tail.Open(tail.Options{Patterns: []string{filepath.Join(r.root, "log", "pods", "*", "*", "*.log")},
		StatePath: filepath.Join(r.root, "state.json"), ReadFromStart: true, MaxRecordBytes: 128 << 10, Now: func() time.Time { return r.now }})
	if err != nil {
		r.t.Fatal(err)
	}
	lc, err := NewLogCollector(LogOptions{Computer: "n", Metadata: r.md, FilterUsingAnnotations: true, RequireMetadata: true,
		MetadataWait: 30 * time.Second, Now: func() time.Time { return r.now }})
	if err != nil {
		r.t.Fatal(err)
	}
	r.tl, r.lc = tl, lc
}

func (r *holdRig) crash() { r.tl.Close(); r.start() }

func (r *holdRig) poll() {
	recs, err := r.tl.Poll()
	if err != nil {
		r.t.Fatal(err)
	}
	var rows []ContainerLogV2
	for _, rec := range recs {
		got, err := r.lc.AddAt(rec.Path, rec.Start, []byte(rec.Text))
		if err != nil {
			r.t.Fatal(err)
		}
		rows = append(rows, got...)
	}
	rows = append(rows, r.lc.Pending()...)
	for _, row := range rows {
		r.got[string(row.LogMessage)]++
		r.order = append(r.order, string(row.LogMessage))
	}
	for _, p := range r.lc.Rewinds() {
		r.tl.Rewind(p)
	}
	if err := r.tl.Commit(r.lc.Holds()...); err != nil {
		r.t.Fatal(err)
	}
}

func (r *holdRig) write(rel string, lines ...string) {
	p := filepath.Join(r.root, "log", "pods", rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		f.WriteString("2026-11-27T04:00:00Z " + l + "\n")
	}
}

func (r *holdRig) known(ns, pod string) {
	r.md.mu.Lock()
	r.md.pods[ns+"/"+pod] = PodMetadata{UID: pod + "-uid"}
	r.md.mu.Unlock()
}

// TestHeldLinesSurviveRestart: lines held for an unknown pod's metadata,
// and the first piece of a partial message, hold the tailer's checkpoint;
// after a crash they are read again and each line is sent exactly once.
func TestHeldLinesSurviveRestart(t *testing.T) {
	r := newHoldRig(t)
	r.known("shop", "web")
	r.write("shop_web_u1/app/0.log", "stdout F web-1", "stdout P web-part-a ")
	r.write("shop_late_u2/app/0.log", "stdout F late-1", "stdout F late-2")
	r.poll()
	if r.got[`"web-1"`] != 1 || r.got[`"late-1"`] != 0 {
		t.Fatalf("first poll: %v", r.got)
	}
	if h := r.lc.Holds(); len(h) != 2 {
		t.Fatalf("holds: %v; want the late pod's first line and the partial piece", h)
	}
	r.write("shop_late_u2/app/0.log", "stdout F late-3")
	r.poll()
	r.crash() // held: late-1..3 and web-part-a; the checkpoint did not pass them

	r.known("shop", "late")
	r.write("shop_web_u1/app/0.log", "stdout F web-part-b", "stdout F web-2")
	r.poll()
	for _, m := range []string{`"web-1"`, `"web-part-a web-part-b"`, `"web-2"`, `"late-1"`, `"late-2"`, `"late-3"`} {
		if r.got[m] != 1 {
			t.Errorf("%s arrived %d times; want once (all: %v)", m, r.got[m], r.got)
		}
	}
	if h := r.lc.Holds(); len(h) != 0 {
		t.Errorf("holds after release: %v", h)
	}
	r.crash() // nothing held: nothing is read again
	r.poll()
	if len(r.order) != 6 {
		t.Errorf("%d rows after a second restart; want 6: %v", len(r.order), r.order)
	}
}

// TestHeldLinesFullRewinds: past the held-lines bound the rest of the file
// is not dropped but read again once the pod is known, in order, once.
func TestHeldLinesFullRewinds(t *testing.T) {
	r := newHoldRig(t)
	const n = maxHeldEntries + 500
	lines := make([]string, n)
	for i := range lines {
		lines[i] = fmt.Sprintf("stdout F m%05d", i)
	}
	r.write("shop_burst_u3/app/0.log", lines...)
	r.poll()
	r.poll() // the rest is read again and ignored while the pod is unknown
	if r.lc.Dropped() != 0 || len(r.order) != 0 {
		t.Fatalf("dropped %d, sent %d while held", r.lc.Dropped(), len(r.order))
	}
	r.known("shop", "burst")
	r.poll()
	r.poll()
	if len(r.order) != n {
		t.Fatalf("%d rows; want %d", len(r.order), n)
	}
	for i, m := range r.order {
		if want := fmt.Sprintf(`"m%05d"`, i); m != want {
			t.Fatalf("row %d = %s; want %s", i, m, want)
		}
	}
}

// TestHeldLinesFullAcrossRotation: a file rotated away and its successor
// share a path (and so the held lines); when the held lines are full, each
// file is read again from its own first line not kept, and every line of
// both arrives once, in order.
func TestHeldLinesFullAcrossRotation(t *testing.T) {
	r := newHoldRig(t)
	rel := "shop_rot_u4/app/0.log"
	const na, nb = maxHeldEntries + 100, 200
	var a, b []string
	for i := range na {
		a = append(a, fmt.Sprintf("stdout F a%05d", i))
	}
	for i := range nb {
		b = append(b, fmt.Sprintf("stdout F b%05d", i))
	}
	r.write(rel, a...)
	p := filepath.Join(r.root, "log", "pods", rel)
	r.poll()
	if err := os.Rename(p, p+".20261127-070000"); err != nil {
		t.Fatal(err)
	}
	r.write(rel, b...)
	r.poll()
	r.poll()
	if len(r.order) != 0 || r.lc.Dropped() != 0 {
		t.Fatalf("sent %d, dropped %d while the pod is unknown", len(r.order), r.lc.Dropped())
	}
	r.known("shop", "rot")
	for range 4 {
		r.poll()
	}
	want := append(a, b...)
	if len(r.order) != len(want) {
		t.Fatalf("%d rows; want %d", len(r.order), len(want))
	}
	for i, m := range r.order {
		if w := `"` + want[i][len("stdout F "):] + `"`; m != w {
			t.Fatalf("row %d = %s; want %s", i, m, w)
		}
	}
}
