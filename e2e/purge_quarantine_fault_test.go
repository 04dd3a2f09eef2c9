package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"
)

// TestPurgeMissesQuarantinedPart: a table of two parts, one of which has a
// byte flipped in its footer while the server is stopped, so the start
// quarantines it. A purge of rows present in both parts cannot read the
// quarantined one: it removes the matching rows of the healthy part, and
// its operation status (GET .../operations/purge-{id}) says `failed` —
// never `completed` — with a message naming the quarantined part (never a
// file path); the quarantine listing counts the missed purge
// (missedPurges 1). The healthy part's other rows are all there.
func TestPurgeMissesQuarantinedPart(t *testing.T) {
	s, c := newServer(t)
	ctx := testCtx(t, 3*time.Minute)
	cols := []Column{{Name: "TimeGenerated", Type: "datetime"}, {Name: "Host", Type: "string"}, {Name: "Seq", Type: "long"}}
	if err := c.CreateTable(ctx, "PurgeQ_CL", cols); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "purgeq-dcr", "Custom-PurgeQ", cols, "PurgeQ_CL", "")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Add(-time.Minute)
	ingest := func(from, n int) {
		t.Helper()
		recs := make([]map[string]any, n)
		for i := range recs {
			recs[i] = map[string]any{"TimeGenerated": now.Add(time.Duration(from+i) * time.Millisecond).Format(time.RFC3339Nano),
				"Host": fmt.Sprintf("host-%d", (from+i)%4), "Seq": from + i}
		}
		body, _ := json.Marshal(recs)
		if err := c.Upload(ctx, rule, "Custom-PurgeQ", body); err != nil {
			t.Fatal(err)
		}
	}
	parts := func() []string {
		t.Helper()
		var out []string
		for _, p := range findParts(t, s.DataDir(), "PurgeQ_CL") {
			if !strings.Contains(filepath.ToSlash(p), "/quarantine/") {
				out = append(out, p)
			}
		}
		return out
	}
	// Two parts: 400 rows, a graceful stop, 400 more, a graceful stop.
	ingest(0, 400)
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	healthy := parts()
	if len(healthy) != 1 {
		t.Fatalf("%d parts after the first stop; want 1", len(healthy))
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	ingest(400, 400)
	if err := s.Stop(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	var bad string
	for _, p := range parts() {
		if p != healthy[0] {
			bad = p
		}
	}
	if bad == "" {
		t.Fatalf("parts %v; want two", parts())
	}
	badID := strings.TrimSuffix(filepath.Base(bad), ".part")
	data, err := os.ReadFile(bad)
	if err != nil {
		t.Fatal(err)
	}
	off, n := partLayout(t, data)
	flipByte(t, bad, off+n/2)
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}

	// Purge host-1's rows: 100 in each part.
	body := `{"table":"PurgeQ_CL","filters":[{"column":"Host","operator":"==","value":"host-1"}]}`
	st, code, resp, err := c.Do(ctx, audienceManagement, http.MethodPost, c.Admin.WorkspaceResourceID()+"/purge?api-version=2020-08-01", []byte(body))
	if err != nil || st != http.StatusAccepted {
		t.Fatalf("purge: HTTP %d %s: %s (%v)", st, code, resp, err)
	}
	var op struct {
		OperationID string `json:"operationId"`
	}
	if err := json.Unmarshal(resp, &op); err != nil || op.OperationID == "" {
		t.Fatalf("purge response without operationId: %s", resp)
	}
	var status struct {
		Status string `json:"status"`
		Error  any    `json:"error"`
	}
	var raw []byte
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		st, code, raw, err = c.Do(ctx, audienceManagement, http.MethodGet, c.Admin.WorkspaceResourceID()+"/operations/purge-"+op.OperationID+"?api-version=2020-08-01", nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("purge status: HTTP %d %s: %s (%v)", st, code, raw, err)
		}
		if err := json.Unmarshal(raw, &status); err != nil {
			t.Fatalf("purge status: %v: %s", err, raw)
		}
		if status.Status != "pending" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("purge still pending after 60 s: %s", raw)
		}
	}
	t.Logf("purge status with a quarantined part: %s", raw)
	msg := string(raw)
	if status.Status != "failed" || !strings.Contains(msg, badID) || !strings.Contains(msg, "quarantined") {
		t.Fatalf("purge status %s; want failed, naming quarantined part %s", raw, badID)
	}
	if strings.Contains(msg, s.DataDir()) {
		t.Fatalf("purge status carries a file path: %s", raw)
	}

	// The healthy part: host-1 gone, the other 300 rows there.
	// The answer is partial (the quarantined part is named): the Azure SDK
	// returns the rows with Results.Error set.
	q := "PurgeQ_CL | summarize n = count() by Host | order by Host asc"
	res, err := c.Query.QueryWorkspace(ctx, c.Admin.WorkspaceID, azquery.QueryBody{Query: &q}, nil)
	if err != nil || len(res.Tables) != 1 {
		t.Fatalf("%s: %v", q, err)
	}
	if res.Error == nil || res.Error.Code != "PartialError" || !strings.Contains(res.Error.Error(), badID) {
		t.Fatalf("%s: error %v; want PartialError naming part %s", q, res.Error, badID)
	}
	got := map[string]float64{}
	for _, r := range res.Tables[0].Rows {
		h, _ := r[0].(string)
		v, _ := r[1].(float64)
		got[h] = v
	}
	if got["host-1"] != 0 || got["host-0"] != 100 || got["host-2"] != 100 || got["host-3"] != 100 {
		t.Fatalf("rows by host after the purge: %v; want host-1 gone and 100 of each other host (the healthy part)", got)
	}

	// The quarantine listing counts the missed purge.
	st, _, raw, err = c.Do(ctx, audienceManagement, http.MethodGet, "/providers/Custos.Admin/quarantinedParts?api-version=2026-11-01", nil)
	if err != nil || st != http.StatusOK {
		t.Fatalf("quarantine listing: HTTP %d %s (%v)", st, raw, err)
	}
	var list struct {
		Value []struct {
			PartID       string `json:"partId"`
			MissedPurges int    `json:"missedPurges"`
		} `json:"value"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Value) != 1 || list.Value[0].PartID != badID || list.Value[0].MissedPurges != 1 {
		t.Fatalf("quarantine listing %s; want part %s with missedPurges 1", raw, badID)
	}
}
