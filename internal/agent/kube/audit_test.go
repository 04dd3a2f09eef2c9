package kube

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

const auditLine = `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"RequestResponse","auditID":"5f0c2d1e-8a3b-4c7d-9e2f-112233445566","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/shop/secrets","verb":"create","user":{"username":"alice@example.com","groups":["devs","system:authenticated"]},"sourceIPs":["10.0.0.5"],"userAgent":"kubectl/v1.33.1 (linux/amd64)","objectRef":{"resource":"secrets","namespace":"shop","name":"db","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":201},"requestReceivedTimestamp":"2026-11-27T01:00:00.123456Z","stageTimestamp":"2026-11-27T01:00:00.130000Z","annotations":{"authorization.k8s.io/decision":"allow"}}`

func TestParseAuditLine(t *testing.T) {
	now := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC)
	r, err := ParseAuditLine([]byte(auditLine+"\n"), "kube-apiserver-cp1", "/subscriptions/s/x", now)
	if err != nil {
		t.Fatal(err)
	}
	if r.AuditID != "5f0c2d1e-8a3b-4c7d-9e2f-112233445566" || r.Verb != "create" || r.Stage != "ResponseComplete" || r.Level != "RequestResponse" ||
		r.RequestURI != "/api/v1/namespaces/shop/secrets" || r.TimeGenerated != "2026-11-27T01:00:00.13Z" || r.RequestReceivedTime != "2026-11-27T01:00:00.123456Z" ||
		r.PodName != "kube-apiserver-cp1" || r.ResourceID != "/subscriptions/s/x" || r.UserAgent != "kubectl/v1.33.1 (linux/amd64)" {
		t.Errorf("row = %+v", r)
	}
	var u struct{ Username string }
	json.Unmarshal(r.User, &u)
	var st struct{ Code int }
	json.Unmarshal(r.ResponseStatus, &st)
	if u.Username != "alice@example.com" || st.Code != 201 || r.RequestObject != nil {
		t.Errorf("user %q, code %d, request object %s", u.Username, st.Code, r.RequestObject)
	}
	for _, bad := range []string{"", "not json", `{"kind":"Pod"}`, `{"kind":"Event","apiVersion":"v1","auditID":"x"}`, `{"kind":"Event","apiVersion":"audit.k8s.io/v1"}`} {
		if _, err := ParseAuditLine([]byte(bad), "", "", now); !errors.Is(err, ErrNotAuditEvent) {
			t.Errorf("%q: %v; want ErrNotAuditEvent", bad, err)
		}
	}
}

// FuzzParseAuditLine: audit lines are read from files an attacker in the
// cluster may influence (request URIs, user agents, objects): any input
// yields a row that encodes as JSON, or an error — never a panic.
func FuzzParseAuditLine(f *testing.F) {
	f.Add([]byte(auditLine))
	f.Add([]byte(`{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a","stageTimestamp":"bad","user":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseAuditLine(b, "p", "", time.Unix(0, 0))
		if err != nil {
			return
		}
		if _, err := json.Marshal(r); err != nil {
			t.Fatalf("row does not encode: %v", err)
		}
	})
}
