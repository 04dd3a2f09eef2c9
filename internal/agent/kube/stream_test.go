package kube

import "testing"

// TestPerStreamExclusions: Container insights' [log_collection_settings.
// stdout|stderr] enabled and exclude_namespaces apply per stream, after the
// namespace filter, to CRI and Docker json-file lines alike.
func TestPerStreamExclusions(t *testing.T) {
	c, err := NewLogCollector(LogOptions{Computer: "n",
		Namespaces:              NamespaceFilter{Mode: FilterExclude, Namespaces: []string{"noisy"}},
		StdoutExcludeNamespaces: []string{"kube-system"},
		StderrExcludeNamespaces: []string{"shop"},
	})
	if err != nil {
		t.Fatal(err)
	}
	add := func(ns, line string) int {
		t.Helper()
		rows, err := c.Add("/var/log/pods/"+ns+"_p_u/c/0.log", []byte(line))
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			if r.PodNamespace != ns {
				t.Fatalf("row of %q in namespace %q", ns, r.PodNamespace)
			}
		}
		return len(rows)
	}
	for _, tt := range []struct {
		ns, line string
		want     int
	}{
		{"kube-system", "2024-05-01T10:00:00Z stdout F a", 0},
		{"kube-system", "2024-05-01T10:00:00Z stderr F b", 1},
		{"shop", "2024-05-01T10:00:00Z stdout F c", 1},
		{"shop", "2024-05-01T10:00:00Z stderr F d", 0},
		{"web", "2024-05-01T10:00:00Z stdout F e", 1},
		{"web", "2024-05-01T10:00:00Z stderr F f", 1},
		{"noisy", "2024-05-01T10:00:00Z stderr F g", 0}, // the namespace filter first
		// A partial stdout message of an excluded namespace never becomes a row.
		{"kube-system", "2024-05-01T10:00:00Z stdout P h1", 0},
		{"kube-system", "2024-05-01T10:00:00Z stdout F h2", 0},
	} {
		if got := add(tt.ns, tt.line); got != tt.want {
			t.Errorf("%s %q: %d rows; want %d", tt.ns, tt.line, got, tt.want)
		}
	}
	// Docker json-file lines carry the stream in the record.
	d, err := NewLogCollector(LogOptions{Computer: "n", DisableStdout: true, StderrExcludeNamespaces: []string{"shop"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		ns, line string
		want     int
	}{
		{"web", `{"log":"out\n","stream":"stdout","time":"2024-05-01T10:00:00Z"}`, 0},
		{"web", `{"log":"err\n","stream":"stderr","time":"2024-05-01T10:00:00Z"}`, 1},
		{"shop", `{"log":"err\n","stream":"stderr","time":"2024-05-01T10:00:00Z"}`, 0},
	} {
		rows, err := d.Add("/var/log/pods/"+tt.ns+"_p_u/c/0.log", []byte(tt.line))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != tt.want {
			t.Errorf("docker %s %s: %d rows; want %d", tt.ns, tt.line, len(rows), tt.want)
		}
	}
}
