package agent

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// smallFS mounts a tmpfs of size bytes on a new directory and fills it, so
// that every write to it fails with ENOSPC until free is called. The test
// fails (never skips) when mounting is not permitted: run it as root (or
// with CAP_SYS_ADMIN), as test.sh does.
func smallFS(t *testing.T, size string) (dir string, fill, free func()) {
	t.Helper()
	dir = t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("this test needs a small tmpfs for a queue that runs out of space: mount -t tmpfs failed (run as root or with CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	filler := filepath.Join(dir, "filler")
	fill = func() {
		f, err := os.OpenFile(filler, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("fill %s: %v", dir, err)
				}
				return
			}
		}
	}
	free = func() {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
	}
	return dir, fill, free
}

// drainQueue takes every entry out of the agent's queue and returns the
// records of each.
func drainQueue(t *testing.T, a *Agent) []map[string]any {
	t.Helper()
	var out []map[string]any
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		e, err := a.q.Next(ctx)
		cancel()
		if err != nil {
			return out
		}
		_, body, err := decodePayload(e.Payload)
		if err != nil {
			t.Fatal(err)
		}
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := io.ReadAll(zr)
		if err != nil {
			t.Fatal(err)
		}
		var recs []map[string]any
		if err := json.Unmarshal(raw, &recs); err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
		if err := a.q.Ack(e); err != nil {
			t.Fatal(err)
		}
	}
}

// collectorCase is one file collector under test: start runs it until ctx
// ends, write appends line i to its files, and key extracts the line's
// number from a queued record.
type collectorCase struct {
	name  string
	setup func(t *testing.T, c *Config, logDir string)
	start func(a *Agent, ctx context.Context)
	write func(t *testing.T, logDir string, from, to int)
	key   func(rec map[string]any) string
}

func appendLines(t *testing.T, path string, from, to int, line func(i int) string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(line(i))
		b.WriteByte('\n')
	}
	if _, err := f.WriteString(b.String()); err != nil {
		t.Fatal(err)
	}
}

// noise is 64 hex digits that differ per line, so that the queue's gzip
// batches take real space on the small filesystem.
func noise(i int) string {
	h := sha256.Sum256([]byte(strconv.Itoa(i)))
	return " " + hex.EncodeToString(h[:])
}

func collectorCases() []collectorCase {
	const clusterID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Kubernetes/connectedClusters/c1"
	kubeCfg := func(c *Config, logDir string) {
		c.Kubernetes.Enabled = true
		c.Kubernetes.ClusterResourceID = clusterID
		c.Kubernetes.DisablePodMetadata = true
		c.Kubernetes.LogRoot = logDir
		c.Kubernetes.Interval = time.Minute
		c.Kubernetes.NamespaceFilteringMode = "Off"
		c.Kubernetes.Role = KubeRoleNode
		c.Kubernetes.AuditLogPaths = []string{filepath.Join(logDir, "audit.log")}
	}
	ks := kubeSettings{name: "r/ci", key: "k1", interval: time.Minute}
	tgt := target{ImmutableID: "dcr-1", Stream: "Custom-Test"}
	return []collectorCase{{
		name: "logFiles",
		start: func(a *Agent, ctx context.Context) {
			a.runFiles(ctx, &DCR{ImmutableID: "dcr-1"}, LogFileSource{Name: "f", FilePatterns: []string{filepath.Join(a.cfg.Kubernetes.LogRoot, "*.log")}}, tgt)
		},
		setup: func(t *testing.T, c *Config, logDir string) { c.Kubernetes.LogRoot = logDir },
		write: func(t *testing.T, dir string, from, to int) {
			appendLines(t, filepath.Join(dir, "app.log"), from, to, func(i int) string { return fmt.Sprintf("line-%06d", i) + noise(i) })
		},
		key: func(rec map[string]any) string { s, _ := rec["RawData"].(string); return strings.Fields(s)[0] },
	}, {
		name:  "containerLogs",
		setup: func(t *testing.T, c *Config, logDir string) { kubeCfg(c, logDir) },
		start: func(a *Agent, ctx context.Context) {
			a.runKubeLogs(ctx, ks, []target{{ImmutableID: "dcr-1", Stream: StreamContainerLogV2}}, &nodePods{})
		},
		write: func(t *testing.T, dir string, from, to int) {
			appendLines(t, filepath.Join(dir, "shop_web-1_0f0e0d0c-1111-2222-3333-444455556666", "app", "0.log"), from, to, func(i int) string {
				return fmt.Sprintf("2026-11-27T01:00:00.%09dZ stdout F line-%06d%s", i, i, noise(i))
			})
		},
		key: func(rec map[string]any) string { s, _ := rec["LogMessage"].(string); return strings.Fields(s)[0] },
	}, {
		name:  "kubeAudit",
		setup: func(t *testing.T, c *Config, logDir string) { kubeCfg(c, logDir) },
		start: func(a *Agent, ctx context.Context) {
			a.runKubeAudit(ctx, ks, []target{{ImmutableID: "dcr-1", Stream: StreamKubeAudit}})
		},
		write: func(t *testing.T, dir string, from, to int) {
			appendLines(t, filepath.Join(dir, "audit.log"), from, to, func(i int) string {
				return fmt.Sprintf(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"line-%06d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/pods","verb":"list","user":{"username":"alice%s"},"stageTimestamp":"2026-11-27T01:00:00Z","requestReceivedTimestamp":"2026-11-27T01:00:00Z"}`, i, noise(i))
			})
		},
		key: func(rec map[string]any) string { s, _ := rec["AuditId"].(string); return s },
	}}
}

// TestFailedQueueWriteKeepsCheckpoint runs each file collector against a
// disk queue on a full tmpfs: the queue refuses every write (ENOSPC), so
// the checkpoints must not move; a stop in that window ("restart") reads
// the lines again; once space is freed every line is queued exactly once.
func TestFailedQueueWriteKeepsCheckpoint(t *testing.T) {
	for _, tc := range collectorCases() {
		t.Run(tc.name, func(t *testing.T) {
			qdir, fill, free := smallFS(t, "2m")
			logDir := filepath.Join(t.TempDir(), "log", "pods")
			a := newTestAgent(t, func(c *Config) {
				c.Buffer.Dir = qdir
				c.Files.PollInterval = 20 * time.Millisecond
				c.Files.ReadFromStart = true
				tc.setup(t, c, logDir)
			})
			run := func() (stop func()) {
				ctx, cancel := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				wg.Go(func() { tc.start(a, ctx) })
				return func() { cancel(); wg.Wait() }
			}
			const n1, n2, n3 = 300, 500, 700
			// Some lines are queued and committed before the disk fills.
			tc.write(t, logDir, 0, n1)
			stop := run()
			waitUntil(t, "the first lines queued", func() bool { return a.c.FileRecords.Load() >= n1 })
			var before string
			waitUntil(t, "their checkpoint", func() bool {
				prev := before
				before = checkpoints(t, a.cfg.StateDir)
				time.Sleep(50 * time.Millisecond)
				return before != "" && before == prev
			})
			fill()
			errs := a.c.CollectErrors.Load()
			tc.write(t, logDir, n1, n2)
			waitUntil(t, "the queue refusing a write", func() bool { return a.c.CollectErrors.Load() > errs })
			if got := checkpoints(t, a.cfg.StateDir); got != before {
				t.Fatalf("checkpoints moved while the queue refused the records:\nbefore %s\nafter  %s", before, got)
			}
			// A stop in the failure window loses what was in memory; the
			// next run reads it again from the checkpoint.
			stop()
			if got := checkpoints(t, a.cfg.StateDir); got != before {
				t.Fatalf("checkpoints moved at stop:\nbefore %s\nafter  %s", before, got)
			}
			stop = run()
			tc.write(t, logDir, n2, n3)
			errs = a.c.CollectErrors.Load()
			waitUntil(t, "the restarted collector meeting the full queue", func() bool { return a.c.CollectErrors.Load() > errs })
			free()
			seen := map[string]int{}
			waitUntil(t, "every line queued", func() bool {
				for _, rec := range drainQueue(t, a) {
					seen[tc.key(rec)]++
				}
				return len(seen) >= n3
			})
			time.Sleep(200 * time.Millisecond)
			stop()
			for _, rec := range drainQueue(t, a) {
				seen[tc.key(rec)]++
			}
			for i := range n3 {
				k := fmt.Sprintf("line-%06d", i)
				if seen[k] != 1 {
					t.Errorf("%s queued %d times; want once", k, seen[k])
				}
			}
			if len(seen) != n3 {
				t.Errorf("%d distinct records queued; want %d", len(seen), n3)
			}
		})
	}
}

func checkpoints(t *testing.T, stateDir string) string {
	t.Helper()
	ms, _ := filepath.Glob(filepath.Join(stateDir, "files", "*.json"))
	var b strings.Builder
	for _, m := range ms {
		data, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
