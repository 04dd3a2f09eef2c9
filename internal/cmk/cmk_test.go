package cmk

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/store"
)

func newManager(t testing.TB) (*Manager, string) {
	t.Helper()
	dir := t.TempDir()
	pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(store.Options{Dir: filepath.Join(dir, "store"), Keys: pk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	keyDir := filepath.Join(dir, "cmk")
	m, err := New(Options{Store: st, Platform: pk, FileKeyDir: keyDir})
	if err != nil {
		t.Fatal(err)
	}
	return m, keyDir
}

func TestPrepareSealsCredentialsAndConfinesKeys(t *testing.T) {
	m, keyDir := newManager(t)
	const id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/clusters/c1"
	secret := "hvs.very-secret-token"
	prov, cfg, sealed, err := m.Prepare(id, KeySpec{Provider: ProviderTransit, KeyVaultURI: "https://vault.example:8200",
		KeyName: "custos-ws", Config: Config{Transit: &TransitConfig{Mount: "transit"}}, Secret: crypt.Secret(secret)}, nil)
	if err != nil || prov != ProviderTransit {
		t.Fatalf("Prepare transit: %q %v", prov, err)
	}
	if bytes.Contains(sealed, []byte(secret)) || strings.Contains(cfg, secret) {
		t.Fatal("the credential is stored in the clear")
	}
	cl := catalog.Cluster{SubscriptionID: "s", ResourceGroup: "rg", Name: "c1", KeyVaultURI: "https://vault.example:8200",
		KeyName: "custos-ws", KeyProvider: prov, KeyConfig: cfg, KeySecretSealed: sealed}
	p, err := m.Provider(&cl)
	if err != nil || p.KeyID() != "transit:transit/custos-ws" {
		t.Fatalf("Provider: %v %v", p, err)
	}
	// The sealed credential is bound to its cluster.
	other := cl
	other.Name = "c2"
	if _, err := m.Provider(&other); err == nil {
		t.Fatal("a credential sealed for c1 opened for c2")
	}
	// Omitted credential: kept for the same provider and URI, required otherwise.
	if _, _, kept, err := m.Prepare(id, KeySpec{Provider: ProviderTransit, KeyVaultURI: "https://vault.example:8200", KeyName: "custos-ws", KeyVersion: "2"}, &cl); err != nil || !bytes.Equal(kept, sealed) {
		t.Fatalf("credential not kept: %v", err)
	}
	if _, _, _, err := m.Prepare(id, KeySpec{Provider: ProviderTransit, KeyVaultURI: "https://other.example", KeyName: "k"}, &cl); !errors.Is(err, ErrInvalid) {
		t.Fatalf("new address without a credential: %v; want ErrInvalid", err)
	}

	for name, spec := range map[string]KeySpec{
		"file outside the key dir": {KeyVaultURI: "file:///etc", KeyName: "passwd"},
		"file name traversal":      {KeyVaultURI: "file://" + keyDir, KeyName: "..", KeyVersion: ""},
		"file missing":             {KeyVaultURI: "file://" + keyDir, KeyName: "absent"},
		"akv without credential":   {KeyVaultURI: "https://contoso.vault.azure.net", KeyName: "k"},
		"akv with a path":          {KeyVaultURI: "https://contoso.vault.azure.net/keys/k", KeyName: "k", Config: Config{Azure: &AzureConfig{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", ClientID: "c"}}, Secret: crypt.Secret("s")},
		"transit over http":        {Provider: ProviderTransit, KeyVaultURI: "http://vault:8200", KeyName: "k", Secret: crypt.Secret("t")},
		"pkcs11 module not allowed": {Provider: ProviderPKCS11, KeyVaultURI: "pkcs11:token", KeyName: "k",
			Config: Config{PKCS11: &PKCS11Config{Module: "/tmp/evil.so", TokenLabel: "t"}}, Secret: crypt.Secret("1234")},
		"unknown provider": {Provider: "hsm9000", KeyVaultURI: "https://x", KeyName: "k"},
	} {
		if _, _, _, err := m.Prepare(id, spec, nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}

	// A file key in the directory: its ID is recorded, and the provider is
	// built (and refuses) while the file is gone.
	fk, err := crypt.CreateFileKey(filepath.Join(keyDir, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	prov, cfg, _, err = m.Prepare(id, KeySpec{KeyVaultURI: "file://" + keyDir, KeyName: "k1"}, nil)
	if err != nil || prov != ProviderFile || !strings.Contains(cfg, fk.KeyID()) {
		t.Fatalf("Prepare file: %q %q %v", prov, cfg, err)
	}
	fcl := catalog.Cluster{SubscriptionID: "s", ResourceGroup: "rg", Name: "c1", KeyVaultURI: "file://" + keyDir, KeyName: "k1", KeyProvider: prov, KeyConfig: cfg}
	p, err = m.Provider(&fcl)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Probe(context.Background(), p); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	fcl.KeyName = "k2" // not there
	p2, err := m.Provider(&fcl)
	if err != nil {
		t.Fatalf("Provider for a missing file key: %v", err)
	}
	if err := m.Probe(context.Background(), p2); err == nil {
		t.Fatal("Probe of a missing file key succeeded")
	}
}

func TestAzureKeyVaultProviderFromCluster(t *testing.T) {
	m, _ := newManager(t)
	const id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.OperationalInsights/clusters/c1"
	prov, cfg, sealed, err := m.Prepare(id, KeySpec{KeyVaultURI: "https://contoso.vault.azure.net", KeyName: "custos", KeyVersion: "abc123",
		Config: Config{Azure: &AzureConfig{TenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47", ClientID: "app"}}, Secret: crypt.Secret("pw")}, nil)
	if err != nil || prov != ProviderAzureKeyVault {
		t.Fatalf("Prepare: %q %v", prov, err)
	}
	cl := catalog.Cluster{SubscriptionID: "s", ResourceGroup: "rg", Name: "c1", KeyVaultURI: "https://contoso.vault.azure.net",
		KeyName: "custos", KeyVersion: "abc123", KeyProvider: prov, KeyConfig: cfg, KeySecretSealed: sealed}
	p, err := m.Provider(&cl)
	if err != nil || p.KeyID() != "akv:contoso.vault.azure.net/keys/custos" {
		t.Fatalf("Provider: %v %v", p, err)
	}
}
