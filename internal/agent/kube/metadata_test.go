package kube

import (
	"strings"
	"sync"
	"testing"
	"time"
)

type lookup struct {
	mu   sync.Mutex
	pods map[string]PodMetadata
}

func (l *lookup) Pod(ns, name string) (PodMetadata, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	md, ok := l.pods[ns+"/"+name]
	return md, ok
}

// TestRequireMetadata: with pod metadata required, an opted-out pod yields
// nothing, lines of a pod not known yet wait and are sent (with their
// metadata, in order) once it is, and lines of a pod that never appears are
// dropped after MetadataWait.
func TestRequireMetadata(t *testing.T) {
	now := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	md := &lookup{pods: map[string]PodMetadata{
		"shop/hidden": {UID: "u1", Annotations: map[string]string{ExcludeAnnotation: "true"}},
	}}
	c, err := NewLogCollector(LogOptions{Computer: "n", Metadata: md, FilterUsingAnnotations: true, IncludeMetadata: true, RequireMetadata: true,
		MetadataWait: 10 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	line := func(msg string) []byte { return []byte("2026-11-27T04:00:00Z stdout F " + msg + "\n") }
	hidden := "/var/log/pods/shop_hidden_u1/app/0.log"
	late := "/var/log/pods/shop_late_u2/app/0.log"
	never := "/var/log/pods/shop_never_u3/app/0.log"
	if rows, err := c.Add(hidden, line("secret")); err != nil || len(rows) != 0 {
		t.Fatalf("opted-out pod: %v %v", rows, err)
	}
	for _, p := range []string{late, never} {
		for _, m := range []string{"one", "two"} {
			if rows, err := c.Add(p, line(m)); err != nil || len(rows) != 0 {
				t.Fatalf("unknown pod's line sent at once: %v %v", rows, err)
			}
		}
	}
	if rows := c.Pending(); len(rows) != 0 {
		t.Fatalf("pending before the pod is known: %v", rows)
	}
	md.mu.Lock()
	md.pods["shop/late"] = PodMetadata{UID: "u2", ControllerKind: "Job", ControllerName: "late-job", Labels: map[string]string{"a": "b"}}
	md.mu.Unlock()
	rows := c.Pending()
	if len(rows) != 2 || string(rows[0].LogMessage) != `"one"` || string(rows[1].LogMessage) != `"two"` ||
		!strings.Contains(string(rows[0].KubernetesMetadata), `"controllerKind":"Job"`) {
		t.Fatalf("held rows: %+v", rows)
	}
	now = now.Add(11 * time.Second)
	if rows := c.Pending(); len(rows) != 0 || c.Dropped() != 2 {
		t.Fatalf("after the wait: %v rows, %d dropped; want 0, 2", rows, c.Dropped())
	}
	if rows, _ := c.Add(late, line("three")); len(rows) != 1 {
		t.Fatalf("known pod: %v", rows)
	}
}
