//go:build pkcs11

package e2e

import (
	"testing"

	"custos/internal/crypt/softhsmtest"
)

// TestKeyRevokedMidIngestionPKCS11 is TestKeyRevokedMidIngestion with the
// customer key in an HSM: the cluster names an AES key on a SoftHSM2 token,
// and the test revokes it by clearing the key's CKA_ENCRYPT and CKA_DECRYPT
// through its own session on the token while the server — another process,
// with the token open — keeps ingesting; then it restores them. Run by
// test/pkcs11.sh (cgo, -tags pkcs11: the binary is built with the tag too).
func TestKeyRevokedMidIngestionPKCS11(t *testing.T) {
	if testing.Short() {
		t.Skip("e2e: starts the custos binary")
	}
	hsm := softhsmtest.New(t) // sets SOFTHSM2_CONF, which the server inherits
	key := hsm.GenerateKey(t, "custos-ws")
	runKeyRevocation(t, t.TempDir(), keyRevocation{
		args: []string{"--keys-pkcs11-modules", softhsmtest.Module},
		keyVaultProperties: map[string]any{
			"keyVaultUri": "pkcs11:", "keyName": "custos-ws", "custosProvider": "pkcs11",
			"custosPkcs11": map[string]any{"module": softhsmtest.Module, "tokenLabel": softhsmtest.TokenLabel},
			"custosSecret": softhsmtest.PIN},
		revoke:  func() { hsm.SetUsable(t, key, false) },
		restore: func() { hsm.SetUsable(t, key, true) },
	})
}
