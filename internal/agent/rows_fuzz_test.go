package agent

import (
	"encoding/json"
	"testing"
	"time"

	"custos/internal/agent/syslog"
)

// FuzzAppendJSONString checks the hand-written JSON string encoder used for
// Syslog records (whose text comes from the network) against encoding/json:
// the output is always valid JSON and decodes to what encoding/json's
// encoding of the same string decodes to.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", `quote " and \ backslash`, "nl\nr\rt\t", "\x00\x01\x1f\x7f", "é€𝄞", "\xff\xfe bad", "\u2028\u2029", "<html>&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := appendJSONString(nil, s)
		var a string
		if err := json.Unmarshal(got, &a); err != nil {
			t.Fatalf("invalid JSON %q for %q: %v", got, s, err)
		}
		want, _ := json.Marshal(s)
		var b string
		json.Unmarshal(want, &b)
		if a != b {
			t.Fatalf("%q decodes to %q; encoding/json gives %q", s, a, b)
		}
	})
}

// TestSyslogRecordMatchesStruct: the hand-written Syslog record has the
// columns and values encoding/json gave the earlier struct.
func TestSyslogRecordMatchesStruct(t *testing.T) {
	a := &Agent{computer: "collector", cfg: Config{ResourceID: "/subscriptions/s/rg/x"}}
	now := time.Date(2026, 11, 27, 1, 2, 3, 400, time.UTC)
	m, err := syslog.Parse([]byte(`<38>1 2026-11-27T01:02:00.5+01:00 web-1 sshd 77 - - Accepted "key" for root`), now, time.UTC)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := a.syslogRecord(m, now, "10.0.0.9")
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	want := map[string]any{"TimeGenerated": "2026-11-27T01:02:03.0000004Z", "EventTime": "2026-11-27T00:02:00.5Z", "Computer": "web-1",
		"HostName": "web-1", "HostIP": "10.0.0.9", "Facility": "auth", "SeverityLevel": "info", "ProcessName": "sshd", "ProcessID": float64(77),
		"SyslogMessage": `Accepted "key" for root`, "CollectorHostName": "collector", "SourceSystem": "Linux", "_ResourceId": "/subscriptions/s/rg/x"}
	if len(got) != len(want) {
		t.Errorf("columns %v; want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v; want %v", k, got[k], v)
		}
	}
	// Unknown sender, no PID, no resource ID: the columns are omitted.
	a.cfg.ResourceID = ""
	m.ProcID = ""
	b, _ = a.syslogRecord(m, now, "")
	got = nil
	json.Unmarshal(b, &got)
	for _, k := range []string{"HostIP", "ProcessID", "_ResourceId"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s present in %s", k, b)
		}
	}
}
