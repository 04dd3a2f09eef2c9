package server

import (
	"encoding/json"
	"testing"
)

// The verification endpoint reports an intact chain to a reader of the
// activity log at "/", and refuses a principal without that right.
func TestActivityVerificationEndpoint(t *testing.T) {
	dir := newDataDir(t)
	ts := startServer(t, testConfig(dir))
	adm := adminCredentials(t, dir)
	tok := managementToken(t, credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, adm.ClientID, adm.ClientSecret))

	resp, body := ts.get(t, "/providers/Custos.Admin/activityLog/verification?api-version=2026-11-01", tok)
	if resp.StatusCode != 200 {
		t.Fatalf("verification = %d %s", resp.StatusCode, body)
	}
	var rep struct {
		Intact      bool  `json:"intact"`
		Records     int64 `json:"records"`
		Checkpoints int   `json:"checkpoints"`
	}
	if err := json.Unmarshal([]byte(body), &rep); err != nil || !rep.Intact {
		t.Fatalf("verification body %s: %v", body, err)
	}
	if resp, _ := ts.get(t, "/providers/Custos.Admin/activityLog/verification", tok); resp.StatusCode != 400 {
		t.Fatalf("without api-version = %d, want 400", resp.StatusCode)
	}
	sp, secret, err := ts.tokens.CreateServicePrincipal(t.Context(), adm.TenantID, "no-roles")
	if err != nil {
		t.Fatal(err)
	}
	other := managementToken(t, credential(t, adm.Endpoint, adm.CAFile, adm.TenantID, sp.AppID, secret))
	if resp, _ := ts.get(t, "/providers/Custos.Admin/activityLog/verification?api-version=2026-11-01", other); resp.StatusCode != 403 {
		t.Fatalf("without a role = %d, want 403", resp.StatusCode)
	}
}
