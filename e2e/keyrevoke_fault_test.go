package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"custos/internal/crypt"
)

// TestKeyRevokedMidIngestion links the workspace to a customer-managed file
// key (a cluster with double encryption), runs two ingestion clients, and
// revokes the key (chmod 000) while they upload. Once the server's key cache
// expires every refusal must be 503 CustomerManagedKeyUnavailable in the
// Azure envelope — no other status — and after the key is restored ingestion
// resumes; every acknowledged batch is present exactly once, also after a
// SIGKILL and restart.
func TestKeyRevokedMidIngestion(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	root := t.TempDir()
	keyDir := filepath.Join(root, "keys")
	if err := os.Mkdir(keyDir, 0o700); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(keyDir, "custos-ws")
	if _, err := crypt.CreateFileKey(keyPath); err != nil {
		t.Fatal(err)
	}
	// Registered first, so it runs after the server is killed.
	t.Cleanup(func() { _ = os.Chmod(keyPath, 0o600) })
	chmod := func(mode os.FileMode) func() {
		return func() {
			if err := os.Chmod(keyPath, mode); err != nil {
				t.Fatal(err)
			}
		}
	}
	runKeyRevocation(t, root, keyRevocation{
		args: []string{"--keys-file-key-dir", keyDir},
		keyVaultProperties: map[string]any{
			"keyVaultUri": "file://" + keyDir, "keyName": "custos-ws", "custosProvider": "file"},
		revoke: chmod(0), restore: chmod(0o600),
	})
}

// keyRevocation is one key provider's part in runKeyRevocation: the server
// arguments that allow it, the cluster's keyVaultProperties, and how the test
// revokes and restores the key at the key store.
type keyRevocation struct {
	args               []string
	keyVaultProperties map[string]any
	revoke, restore    func()
}

// runKeyRevocation links the workspace to a double-encryption cluster whose
// key kr names, ingests from two clients, revokes the key at its store while
// they upload and restores it: refusals must all be 503
// CustomerManagedKeyUnavailable, ingestion must resume, and every
// acknowledged batch must be present exactly once, also after a SIGKILL and
// restart.
func runKeyRevocation(t *testing.T, root string, kr keyRevocation) {
	ctx := testCtx(t, 170*time.Second)
	s, c := StartServer(t, ctx, Options{Binary: custosBin, DataDir: filepath.Join(root, "data"), LogPath: filepath.Join(root, "server.log"),
		Args: append(kr.args, "--keys-cache-ttl", "1s", "--keys-retry-interval", "100ms")})
	adm := c.Admin
	if err := c.GrantDataRoles(ctx); err != nil {
		t.Fatal(err)
	}
	rg := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s", adm.SubscriptionID, adm.ResourceGroup)
	cluster := rg + "/providers/Microsoft.OperationalInsights/clusters/cmk-cluster"
	if _, err := c.ARM(ctx, http.MethodPut, cluster+"?api-version=2022-10-01", map[string]any{
		"location": "local", "identity": map[string]any{"type": "SystemAssigned"},
		"sku":        map[string]any{"name": "CapacityReservation", "capacity": 100},
		"properties": map[string]any{"isDoubleEncryptionEnabled": true, "keyVaultProperties": kr.keyVaultProperties},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ARM(ctx, http.MethodPut, adm.WorkspaceResourceID()+"/linkedServices/cluster?api-version=2022-10-01",
		map[string]any{"properties": map[string]any{"writeAccessResourceId": cluster}}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateTable(ctx, "Crash_CL", crashColumns); err != nil {
		t.Fatal(err)
	}
	rule, err := c.CreateDCR(ctx, "cmk-dcr", "Custom-Crash", crashColumns, "Crash_CL", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Token(ctx, audienceIngestion); err != nil {
		t.Fatal(err)
	}

	led := &crashLedger{sent: map[string]int{}, acked: map[string]bool{}}
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	var refused atomic.Int64
	var failMu sync.Mutex
	var failure string
	cctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for cl := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; cctx.Err() == nil; n++ {
				batch := fmt.Sprintf("c%d-b%d", cl, n)
				recs := make([]map[string]any, crashBatchRows)
				for i := range recs {
					recs[i] = map[string]any{
						"TimeGenerated": base.Add(time.Duration(cl*1000000+n*crashBatchRows+i) * time.Millisecond).Format(time.RFC3339Nano),
						"RowId":         fmt.Sprintf("%s-%d", batch, i),
						"BatchId":       batch,
						"Client":        cl,
						"Payload":       "customer key revocation " + batch,
					}
				}
				body, _ := json.Marshal(recs)
				status, code, resp, err := uploadRaw(context.WithoutCancel(cctx), c, rule, "Custom-Crash", body)
				led.record(batch, len(recs), err == nil && status/100 == 2)
				if err == nil && status/100 == 2 {
					continue
				}
				if err == nil && status == http.StatusServiceUnavailable && code == "CustomerManagedKeyUnavailable" {
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				failMu.Lock()
				if failure == "" {
					failure = fmt.Sprintf("upload %s: err %v, HTTP %d %q: %.300s; want 204 or 503 CustomerManagedKeyUnavailable", batch, err, status, code, resp)
				}
				failMu.Unlock()
				return
			}
		}()
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				stop()
				wg.Wait()
				t.Fatalf("%s: not within 30 s (%s)", what, failure)
			}
		}
	}
	waitFor("20 batches acknowledged before the revocation", func() bool { return led.acks() >= 20 })
	kr.revoke()
	revokedAt := led.acks()
	waitFor("10 uploads refused after the revocation", func() bool { return refused.Load() >= 10 })
	t.Logf("key revoked after %d acknowledged batches; %d acknowledged and %d refused by the time the refusals were counted",
		revokedAt, led.acks(), refused.Load())
	kr.restore()
	restored := led.acks()
	waitFor("20 more batches acknowledged after the key was restored", func() bool { return led.acks() >= restored+20 })
	stop()
	wg.Wait()
	if failure != "" {
		t.Fatal(failure)
	}
	t.Logf("%d uploads refused with 503 CustomerManagedKeyUnavailable; %d acknowledged in all", refused.Load(), led.acks())
	verifyCrashLedger(t, ctx, c, led, "after the key was restored")
	if err := s.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	verifyCrashLedger(t, ctx, c, led, "after SIGKILL and restart")
}
