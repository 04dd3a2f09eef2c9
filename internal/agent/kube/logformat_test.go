package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/agent/tail"
)

func TestParseCRI(t *testing.T) {
	for _, tc := range []struct {
		in      string
		stream  string
		partial bool
		msg     string
	}{
		{"2024-05-01T10:00:00.123456789Z stdout F hello world\n", "stdout", false, "hello world"},
		{"2024-05-01T10:00:00.123456789+02:00 stderr P part one", "stderr", true, "part one"},
		{"2024-05-01T10:00:00Z stdout F:x  two  spaces", "stdout", false, " two  spaces"},
		{"2024-05-01T10:00:00Z stdout F", "stdout", false, ""},
		{"2024-05-01T10:00:00Z stdout F ", "stdout", false, ""},
	} {
		l, err := ParseCRI([]byte(tc.in))
		if err != nil {
			t.Fatalf("ParseCRI(%q): %v", tc.in, err)
		}
		if l.Stream != tc.stream || l.Partial != tc.partial || string(l.Message) != tc.msg || l.Time.Location() != time.UTC {
			t.Errorf("ParseCRI(%q) = %+v; want stream %s partial %v msg %q", tc.in, l, tc.stream, tc.partial, tc.msg)
		}
	}
	l, _ := ParseCRI([]byte("2024-05-01T10:00:00.5+02:00 stdout F x"))
	if want := time.Date(2024, 5, 1, 8, 0, 0, 5e8, time.UTC); !l.Time.Equal(want) {
		t.Errorf("time = %v; want %v", l.Time, want)
	}
	for _, bad := range []string{"", "hello", "2024-05-01T10:00:00Z stdin F x", "notatime stdout F x",
		"2024-05-01T10:00:00Z stdout X x", "2024-05-01T10:00:00Z stdout", " stdout F x"} {
		if _, err := ParseCRI([]byte(bad)); !errors.Is(err, ErrBadLine) {
			t.Errorf("ParseCRI(%q) err = %v; want ErrBadLine", bad, err)
		}
	}
}

func TestParseDocker(t *testing.T) {
	l, err := ParseDocker([]byte(`{"log":"hello \"x\"\n","stream":"stderr","time":"2024-05-01T10:00:00.000000001Z"}`))
	if err != nil || l.Partial || string(l.Message) != `hello "x"` || l.Stream != "stderr" || l.Time.Nanosecond() != 1 {
		t.Fatalf("got %+v, %v", l, err)
	}
	l, err = ParseDocker([]byte(`{"log":"piece","stream":"stdout","time":"2024-05-01T10:00:00Z"}`))
	if err != nil || !l.Partial || string(l.Message) != "piece" {
		t.Fatalf("got %+v, %v", l, err)
	}
	for _, bad := range []string{`{`, `{"stream":"stdout","time":"2024-05-01T10:00:00Z"}`, `{"log":"x\n","stream":"other","time":"2024-05-01T10:00:00Z"}`,
		`{"log":"x\n","stream":"stdout","time":"yesterday"}`, `[]`} {
		if _, err := ParseDocker([]byte(bad)); !errors.Is(err, ErrBadLine) {
			t.Errorf("ParseDocker(%q) err = %v; want ErrBadLine", bad, err)
		}
	}
}

func TestAssemblerInterleavedAndTruncated(t *testing.T) {
	a := NewAssembler(10)
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	in := []Line{
		{Time: t0, Stream: "stdout", Partial: true, Message: []byte("abc")},
		{Time: t0.Add(1), Stream: "stderr", Partial: true, Message: []byte("E1")},
		{Time: t0.Add(2), Stream: "stdout", Partial: true, Message: []byte("defghij")},
		{Time: t0.Add(3), Stream: "stderr", Message: []byte("E2")},
		{Time: t0.Add(4), Stream: "stdout", Message: []byte("klm")},
		{Time: t0.Add(5), Stream: "stdout", Message: []byte("short")},
	}
	var got []Entry
	for _, l := range in {
		if e, ok := a.Add(l); ok {
			got = append(got, e)
		}
	}
	want := []Entry{
		{Time: t0.Add(1), Stream: "stderr", Message: "E1E2"},
		{Time: t0, Stream: "stdout", Message: "abcdefghij", Truncated: true},
		{Time: t0.Add(5), Stream: "stdout", Message: "short"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %+v; want %+v", got, want)
	}
	a.Add(Line{Time: t0, Stream: "stderr", Partial: true, Message: []byte("dangling")})
	if f := a.Flush(); len(f) != 1 || f[0].Message != "dangling" || f[0].Stream != "stderr" {
		t.Fatalf("Flush = %+v", f)
	}
	if f := a.Flush(); len(f) != 0 {
		t.Fatalf("second Flush = %+v", f)
	}
}

func TestParseLogPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		want ContainerRef
	}{
		{"/var/log/pods/kube-system_coredns-5d78c9869d-abcde_0f3e1b2a-1111-2222-3333-444455556666/coredns/3.log",
			ContainerRef{Namespace: "kube-system", Pod: "coredns-5d78c9869d-abcde", PodUID: "0f3e1b2a-1111-2222-3333-444455556666", Container: "coredns", Restart: "3"}},
		{"/host/var/log/pods/default_web-0_uid1/nginx/0.log.20240501-101010",
			ContainerRef{Namespace: "default", Pod: "web-0", PodUID: "uid1", Container: "nginx", Restart: "0"}},
		{"/var/log/containers/web-0_default_nginx-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.log",
			ContainerRef{Namespace: "default", Pod: "web-0", Container: "nginx", ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}},
		{"/var/log/containers/api-7d9f_prod_side-car-abc123.log",
			ContainerRef{Namespace: "prod", Pod: "api-7d9f", Container: "side-car", ContainerID: "abc123"}},
	} {
		got, err := ParseLogPath(tc.path)
		if err != nil || got != tc.want {
			t.Errorf("ParseLogPath(%q) = %+v, %v; want %+v", tc.path, got, err, tc.want)
		}
	}
	for _, bad := range []string{"/var/log/syslog", "/var/log/pods/a_b/c/0.log", "/var/log/pods/a_b_c/d/x.log",
		"/var/log/containers/a_b.log", "/var/log/containers/a_b_c-XYZ.log", "/var/log/containers/a_b_c.txt", "", "/var/log/pods/a_b_c_d/e/0.log"} {
		if _, err := ParseLogPath(bad); err == nil {
			t.Errorf("ParseLogPath(%q) succeeded", bad)
		}
	}
}

func TestLevelDetection(t *testing.T) {
	for in, want := range map[string]string{
		`{"level":"error","msg":"x"}`:          LevelError,
		`{"Severity":"WARNING"}`:               LevelWarning,
		`{"level":30,"msg":"pino"}`:            LevelInfo,
		`{"lvl":"dbug"}`:                       LevelDebug,
		`{"msg":"no level"}`:                   LevelUnknown,
		"ERROR something broke":                LevelError,
		"[warn] disk low":                      LevelWarning,
		"2024-05-01 12:00:00 INFO started":     LevelInfo,
		"E0612 12:00:00.000000 1 x.go:1] boom": LevelError,
		"I0612 12:00:00.000000 1 x.go:1] ok":   LevelInfo,
		`ts=1 level=debug msg="x"`:             LevelDebug,
		"could not fetch info about it":        LevelUnknown,
		"Trace: entering":                      LevelTrace,
		"FATAL out of memory":                  LevelCritical,
		"":                                     LevelUnknown,
		"just text":                            LevelUnknown,
	} {
		if _, got := messageAndLevel(in); got != want {
			t.Errorf("level(%q) = %s; want %s", in, got, want)
		}
	}
}

type podTable map[string]PodMetadata

func (p podTable) Pod(ns, name string) (PodMetadata, bool) { m, ok := p[ns+"/"+name]; return m, ok }

// writeLines appends lines to a file, creating its directory.
func writeLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCollectorOnTailedFiles writes CRI and Docker logs with partial lines
// and rotation under a fake /var/log, follows them with the agent's tailer
// and checks the ContainerLogV2 rows.
func TestCollectorOnTailedFiles(t *testing.T) {
	root := t.TempDir()
	criPath := filepath.Join(root, "var/log/pods/shop_web-0_uid-web/app/0.log")
	dockPath := filepath.Join(root, "var/log/containers/db-1_shop_pg-abcdef012345.log")
	sysPath := filepath.Join(root, "var/log/pods/kube-system_dns-1_uid-dns/dns/0.log")
	optOut := filepath.Join(root, "var/log/pods/shop_secret-0_uid-s/app/0.log")

	long := strings.Repeat("x", 70<<10) // over the 64 KB limit, split in CRI P pieces
	var pieces []string
	for i := 0; i < len(long); i += 16 << 10 {
		pieces = append(pieces, "2024-05-01T10:00:01Z stdout P "+long[i:min(i+16<<10, len(long))])
	}
	writeLines(t, criPath, append(append([]string{
		`2024-05-01T10:00:00.000000001Z stdout F {"level":"warn","msg":"slow","ms":1200}`,
		"2024-05-01T10:00:00.5Z stdout P first half, ",
		"2024-05-01T10:00:00.6Z stderr F ERROR interleaved",
		"2024-05-01T10:00:00.7Z stdout F second half",
	}, pieces...), "2024-05-01T10:00:01Z stdout F tail")...)
	// Docker splits at 16 KB: pieces without "\n".
	p1, _ := json.Marshal(strings.Repeat("a", 16<<10))
	writeLines(t, dockPath,
		`{"log":`+string(p1)+`,"stream":"stdout","time":"2024-05-01T10:00:02Z"}`,
		`{"log":"b end\n","stream":"stdout","time":"2024-05-01T10:00:02.1Z"}`,
		`{"log":"[info] ready\n","stream":"stderr","time":"2024-05-01T10:00:03Z"}`,
		`not json at all`)
	writeLines(t, sysPath, "2024-05-01T10:00:00Z stdout F system noise")
	writeLines(t, optOut, "2024-05-01T10:00:00Z stdout F password=hunter2")

	tl, err := tail.Open(tail.Options{Patterns: []string{filepath.Join(root, "var/log/pods/*/*/*.log"), filepath.Join(root, "var/log/containers/*.log")},
		StatePath: filepath.Join(root, "state.json"), ReadFromStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tl.Close()
	c, err := NewLogCollector(LogOptions{Computer: "node-1", ResourceID: "/subscriptions/s/resourceGroups/r/providers/Microsoft.Kubernetes/connectedClusters/c",
		Namespaces: NamespaceFilter{Mode: FilterExclude, Namespaces: []string{"kube-system"}}, FilterUsingAnnotations: true, IncludeMetadata: true,
		Metadata: podTable{
			"shop/secret-0": {Annotations: map[string]string{ExcludeAnnotation: "true"}},
			"shop/web-0":    {UID: "uid-web", Labels: map[string]string{"app": "web"}, Images: map[string]string{"app": "shop/web:1.2"}, ContainerIDs: map[string]string{"app": "c0ffee"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	var rows []ContainerLogV2
	var bad int
	poll := func() {
		recs, err := tl.Poll()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			got, err := c.Add(r.Path, []byte(r.Text))
			if errors.Is(err, ErrBadLine) {
				bad++
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, got...)
		}
	}
	poll()
	// Rotation: the runtime renames 0.log and starts a new one.
	if err := os.Rename(criPath, criPath+".20240501-100005"); err != nil {
		t.Fatal(err)
	}
	writeLines(t, criPath, "2024-05-01T10:00:06Z stderr F after rotation")
	poll()

	byMsg := map[string]ContainerLogV2{}
	for _, r := range rows {
		var s string
		if json.Unmarshal(r.LogMessage, &s) != nil {
			s = string(r.LogMessage)
		}
		if len(s) > 40 {
			s = s[:40]
		}
		byMsg[s] = r
	}
	if bad != 1 {
		t.Errorf("bad lines = %d; want 1", bad)
	}
	if len(rows) != 7 {
		t.Fatalf("got %d rows; want 7: %v", len(rows), byMsg)
	}
	j := byMsg[`{"level":"warn","msg":"slow","ms":1200}`]
	if j.LogLevel != LevelWarning || j.PodName != "web-0" || j.PodNamespace != "shop" || j.ContainerName != "app" || j.ContainerID != "c0ffee" ||
		j.LogSource != "stdout" || j.Computer != "node-1" || j.TimeGenerated.Nanosecond() != 1 ||
		!strings.Contains(string(j.KubernetesMetadata), `"podUid":"uid-web"`) || !strings.Contains(string(j.KubernetesMetadata), `"image":"shop/web:1.2"`) {
		t.Errorf("JSON row = %+v", j)
	}
	if r, ok := byMsg["first half, second half"]; !ok || r.LogLevel != LevelUnknown || !r.TimeGenerated.Equal(time.Date(2024, 5, 1, 10, 0, 0, 5e8, time.UTC)) {
		t.Errorf("reassembled row = %+v (ok %v)", r, ok)
	}
	if r := byMsg["ERROR interleaved"]; r.LogSource != "stderr" || r.LogLevel != LevelError {
		t.Errorf("stderr row = %+v", r)
	}
	if r := byMsg[long[:40]]; len(r.LogMessage) != DefaultMaxLogBytes+2 {
		t.Errorf("long row message is %d bytes; want %d (truncated, quoted)", len(r.LogMessage), DefaultMaxLogBytes+2)
	}
	if r := byMsg[strings.Repeat("a", 40)]; r.ContainerID != "abcdef012345" || r.PodName != "db-1" || r.ContainerName != "pg" {
		t.Errorf("docker row = %+v", r)
	} else {
		var s string
		_ = json.Unmarshal(r.LogMessage, &s)
		if s != strings.Repeat("a", 16<<10)+"b end" {
			t.Errorf("docker reassembly: %d bytes", len(s))
		}
	}
	if r := byMsg["[info] ready"]; r.LogLevel != LevelInfo || r.LogSource != "stderr" {
		t.Errorf("docker stderr row = %+v", r)
	}
	if _, ok := byMsg["after rotation"]; !ok {
		t.Error("no row from the rotated-in file")
	}
	for m := range byMsg {
		if strings.Contains(m, "system noise") || strings.Contains(m, "hunter2") {
			t.Errorf("filtered line collected: %q", m)
		}
	}
	b, err := json.Marshal(j)
	if err != nil || !strings.Contains(string(b), `"LogMessage":{"level":"warn"`) || !strings.Contains(string(b), `"ContainerId":"c0ffee"`) {
		t.Errorf("wire row = %s, %v", b, err)
	}
}

func TestNamespaceFilterAndOptions(t *testing.T) {
	inc := NamespaceFilter{Mode: FilterInclude, Namespaces: []string{"a"}}
	if !inc.Allows("a") || inc.Allows("b") || !(NamespaceFilter{}).Allows("x") {
		t.Error("filter wrong")
	}
	if (NamespaceFilter{Mode: "Sometimes"}).Validate() == nil {
		t.Error("bad mode accepted")
	}
	if _, err := NewLogCollector(LogOptions{}); err == nil {
		t.Error("missing Computer accepted")
	}
	if _, err := NewLogCollector(LogOptions{Computer: "n", FilterUsingAnnotations: true}); err == nil {
		t.Error("annotation filter without metadata accepted")
	}
	c, _ := NewLogCollector(LogOptions{Computer: "n", DisableStderr: true})
	p := "/var/log/pods/ns_p_u/c/0.log"
	if rows, err := c.Add(p, []byte("2024-05-01T10:00:00Z stderr F x")); err != nil || len(rows) != 0 {
		t.Errorf("stderr disabled: %v %v", rows, err)
	}
	if rows, _ := c.Add(p, []byte("2024-05-01T10:00:00Z stdout P dang")); len(rows) != 0 {
		t.Error("partial produced a row")
	}
	if rows := c.Forget(p); len(rows) != 1 || string(rows[0].LogMessage) != `"dang"` {
		t.Errorf("Forget = %+v", rows)
	}
	if _, err := c.Add("/tmp/x.log", []byte("2024-05-01T10:00:00Z stdout F x")); err == nil {
		t.Error("unknown path accepted")
	}
}
