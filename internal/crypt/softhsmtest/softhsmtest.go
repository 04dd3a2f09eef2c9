//go:build pkcs11

// Package softhsmtest gives PKCS#11 tests a SoftHSM2 token of their own:
// initialised in the test's temporary directory (SOFTHSM2_CONF), with an
// admin session to create AES key-encryption keys and to disable and
// re-enable them (revocation and restore).
//
// It is imported by tests only (built with -tags pkcs11, see
// test/pkcs11.sh), never by a production package.
package softhsmtest

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/miekg/pkcs11"
)

// Module is the SoftHSM2 PKCS#11 library Debian's softhsm2 package installs.
const Module = "/usr/lib/softhsm/libsofthsm2.so"

// Token label, user PIN and security officer PIN of the token New creates.
const (
	TokenLabel = "custos"
	PIN        = "1234"
	soPIN      = "5678"
)

// HSM is an admin session on a fresh SoftHSM2 token.
type HSM struct {
	p       *pkcs11.Ctx
	session pkcs11.SessionHandle
}

// New initialises a token labelled TokenLabel in a temporary directory and
// logs in as its user. It fails (never skips) when SoftHSM2 is missing.
func New(t testing.TB) *HSM {
	t.Helper()
	if _, err := os.Stat(Module); err != nil {
		t.Fatalf("SoftHSM2 is not installed (apt-get install -y softhsm2; test/pkcs11.sh installs it): %v", err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "softhsm2.conf")
	if err := os.MkdirAll(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\nlog.level = ERROR\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", TokenLabel, "--so-pin", soPIN, "--pin", PIN).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util: %v: %s", err, out)
	}
	p := pkcs11.New(Module)
	if err := p.Initialize(); err != nil && !IsCKR(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		t.Fatal(err)
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		t.Fatal(err)
	}
	var slot uint
	found := false
	for _, s := range slots {
		if ti, err := p.GetTokenInfo(s); err == nil && ti.Label == TokenLabel {
			slot, found = s, true
		}
	}
	if !found {
		t.Fatal("token not found")
	}
	s, err := p.OpenSession(slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Login(s, pkcs11.CKU_USER, PIN); err != nil && !IsCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.CloseSession(s)
		p.Finalize()
		p.Destroy()
	})
	return &HSM{p: p, session: s}
}

// IsCKR reports whether err is the PKCS#11 return value code.
func IsCKR(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// GenerateKey creates a non-extractable AES-256 key labelled label on the
// token, usable to encrypt and decrypt.
func (h *HSM) GenerateKey(t testing.TB, label string) pkcs11.ObjectHandle {
	t.Helper()
	k, err := h.p.GenerateKey(h.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_GEN, nil)}, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_VALUE_LEN, 32),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, true),
		pkcs11.NewAttribute(pkcs11.CKA_SENSITIVE, true),
		pkcs11.NewAttribute(pkcs11.CKA_EXTRACTABLE, false),
		pkcs11.NewAttribute(pkcs11.CKA_MODIFIABLE, true),
	})
	if err != nil {
		t.Fatalf("generate key: %v", err)
	}
	return k
}

// SetUsable enables or disables a key for encryption and decryption: the
// HSM's form of revoking and restoring a customer key.
func (h *HSM) SetUsable(t testing.TB, k pkcs11.ObjectHandle, usable bool) {
	t.Helper()
	if err := h.p.SetAttributeValue(h.session, k, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_DECRYPT, usable),
		pkcs11.NewAttribute(pkcs11.CKA_ENCRYPT, usable),
	}); err != nil {
		t.Fatalf("set CKA_DECRYPT=%v: %v", usable, err)
	}
}

// DestroyKey deletes a key from the token: the HSM's form of deleting a
// customer key for good.
func (h *HSM) DestroyKey(t testing.TB, k pkcs11.ObjectHandle) {
	t.Helper()
	if err := h.p.DestroyObject(h.session, k); err != nil {
		t.Fatalf("destroy key: %v", err)
	}
}
