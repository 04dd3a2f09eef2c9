//go:build pkcs11

package crypt

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/miekg/pkcs11"
)

// This file needs cgo and is built only with -tags pkcs11; the default build
// stays pure Go. Test it with test/pkcs11.sh (SoftHSM2).

// PKCS11Options configure a PKCS#11 key provider.
type PKCS11Options struct {
	// Module is the path of the PKCS#11 library, for example
	// /usr/lib/softhsm/libsofthsm2.so (required).
	Module string
	// TokenLabel selects the token (required).
	TokenLabel string
	// PIN is the user PIN of the token (required).
	PIN Secret
	// KeyLabel is the CKA_LABEL of the AES key (CKK_AES, 256 bits, with
	// CKA_ENCRYPT and CKA_DECRYPT) used for new wrappings (required). Keys
	// wrapped under an earlier label stay readable while that key exists:
	// rotation is a new key with a new label.
	KeyLabel string
}

// PKCS11 wraps keys inside an HSM with CKM_AES_GCM under an AES key that
// never leaves it. The wrapped form is: version (1) | label length (1 byte) |
// key label | IV (12 bytes) | GCM ciphertext and tag, with the AAD passed to
// the HSM as GCM additional data. Disabling the key (CKA_DECRYPT or
// CKA_ENCRYPT false), deleting it, a logged-out or lost session and a
// removed token are ErrKeyUnavailable. Safe for concurrent use (one session,
// serialised); Close releases the module.
type PKCS11 struct {
	opts PKCS11Options
	p    *pkcs11.Ctx
	slot uint
	id   string

	mu      sync.Mutex // guards session and handles
	session pkcs11.SessionHandle
	open    bool
	handles map[string]pkcs11.ObjectHandle
}

var _ KeyProvider = (*PKCS11)(nil)

const pkcs11WrapVersion = 1

// NewPKCS11 loads the module, finds the token, logs in and checks that the
// key exists.
func NewPKCS11(opts PKCS11Options) (*PKCS11, error) {
	if opts.Module == "" || opts.TokenLabel == "" || opts.KeyLabel == "" || len(opts.PIN) == 0 {
		return nil, errors.New("pkcs11: Module, TokenLabel, PIN and KeyLabel are required")
	}
	if len(opts.KeyLabel) > 255 {
		return nil, errors.New("pkcs11: key label longer than 255 bytes")
	}
	ctx := pkcs11.New(opts.Module)
	if ctx == nil {
		return nil, fmt.Errorf("pkcs11: cannot load module %s", opts.Module)
	}
	if err := ctx.Initialize(); err != nil && !isCKR(err, pkcs11.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		ctx.Destroy()
		return nil, fmt.Errorf("pkcs11: initialize: %w", err)
	}
	p := &PKCS11{opts: opts, p: ctx, handles: map[string]pkcs11.ObjectHandle{}}
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("pkcs11: slots: %w", err)
	}
	found := false
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && ti.Label == opts.TokenLabel {
			p.slot, found = s, true
			break
		}
	}
	if !found {
		p.Close()
		return nil, fmt.Errorf("pkcs11: no token labelled %q", opts.TokenLabel)
	}
	p.id = "pkcs11:" + opts.TokenLabel + "/" + opts.KeyLabel
	if len(p.id) > MaxKeyIDLen {
		p.Close()
		return nil, errors.New("pkcs11: token and key labels too long")
	}
	p.mu.Lock()
	_, err = p.keyHandle(opts.KeyLabel)
	p.mu.Unlock()
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func isCKR(err error, code uint) bool {
	var e pkcs11.Error
	return errors.As(err, &e) && uint(e) == code
}

// classify maps a PKCS#11 error to ErrAuth (the ciphertext is not for this
// key or AAD) or ErrKeyUnavailable (everything else: the key or token
// cannot be used now).
func classify(op string, err error) error {
	var e pkcs11.Error
	if errors.As(err, &e) {
		switch uint(e) {
		case pkcs11.CKR_ENCRYPTED_DATA_INVALID, pkcs11.CKR_ENCRYPTED_DATA_LEN_RANGE:
			return fmt.Errorf("pkcs11 %s: %w: %w", op, ErrAuth, err)
		}
	}
	return fmt.Errorf("pkcs11 %s: %w: %w", op, ErrKeyUnavailable, err)
}

// ensureSession opens and logs in a session. The caller holds p.mu.
func (p *PKCS11) ensureSession() error {
	if p.open {
		return nil
	}
	s, err := p.p.OpenSession(p.slot, pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return classify("open session", err)
	}
	if err := p.p.Login(s, pkcs11.CKU_USER, string(p.opts.PIN)); err != nil && !isCKR(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN) {
		p.p.CloseSession(s)
		return classify("login", err)
	}
	p.session, p.open = s, true
	clear(p.handles)
	return nil
}

// resetSession forgets the session after an error that may mean it is gone.
func (p *PKCS11) resetSession() {
	if p.open {
		p.p.CloseSession(p.session)
	}
	p.open = false
	clear(p.handles)
}

// keyHandle finds the AES key with the label. The caller holds p.mu.
func (p *PKCS11) keyHandle(label string) (pkcs11.ObjectHandle, error) {
	if err := p.ensureSession(); err != nil {
		return 0, err
	}
	if h, ok := p.handles[label]; ok {
		return h, nil
	}
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
	}
	if err := p.p.FindObjectsInit(p.session, tmpl); err != nil {
		p.resetSession()
		return 0, classify("find key", err)
	}
	objs, _, err := p.p.FindObjects(p.session, 2)
	if ferr := p.p.FindObjectsFinal(p.session); err == nil {
		err = ferr
	}
	if err != nil {
		p.resetSession()
		return 0, classify("find key", err)
	}
	switch len(objs) {
	case 0:
		return 0, fmt.Errorf("pkcs11: %w: no AES key labelled %q on token %q", ErrKeyUnavailable, label, p.opts.TokenLabel)
	case 1:
	default:
		return 0, fmt.Errorf("pkcs11: two AES keys labelled %q on token %q", label, p.opts.TokenLabel)
	}
	p.handles[label] = objs[0]
	return objs[0], nil
}

// run runs op with the key's handle, retrying once on a fresh session when
// the first attempt fails for a reason other than the data.
func (p *PKCS11) run(label string, op func(h pkcs11.ObjectHandle) error) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p == nil {
		return fmt.Errorf("pkcs11: %w: provider closed", ErrKeyUnavailable)
	}
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		var h pkcs11.ObjectHandle
		if h, err = p.keyHandle(label); err != nil {
			continue
		}
		if err = op(h); err == nil || errors.Is(err, ErrAuth) {
			return err
		}
		p.resetSession()
	}
	return err
}

// KeyID implements KeyProvider: "pkcs11:<token label>/<key label>".
func (p *PKCS11) KeyID() string { return p.id }

// String never reveals the PIN.
func (p *PKCS11) String() string { return "crypt.PKCS11(" + p.id + ")" }

// WrapKey implements KeyProvider.
func (p *PKCS11) WrapKey(_ context.Context, key, aad []byte) ([]byte, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("pkcs11: wrap key: key is %d bytes, want %d", len(key), KeySize)
	}
	iv := make([]byte, NonceSize)
	if _, err := io.ReadFull(rand.Reader, iv); err != nil {
		return nil, fmt.Errorf("pkcs11: wrap key: read IV: %w", err)
	}
	var out []byte
	err := p.run(p.opts.KeyLabel, func(h pkcs11.ObjectHandle) error {
		params := pkcs11.NewGCMParams(iv, aad, TagSize*8)
		defer params.Free()
		if err := p.p.EncryptInit(p.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return classify("encrypt init", err)
		}
		ct, err := p.p.Encrypt(p.session, key)
		if err != nil {
			return classify("encrypt", err)
		}
		if got := params.IV(); len(got) == NonceSize {
			copy(iv, got) // some HSMs choose the IV themselves
		}
		out = make([]byte, 0, 2+len(p.opts.KeyLabel)+NonceSize+len(ct))
		out = append(out, pkcs11WrapVersion, byte(len(p.opts.KeyLabel)))
		out = append(out, p.opts.KeyLabel...)
		out = append(out, iv...)
		out = append(out, ct...)
		return nil
	})
	return out, err
}

// UnwrapKey implements KeyProvider, with the key label recorded in wrapped.
func (p *PKCS11) UnwrapKey(_ context.Context, wrapped, aad []byte) ([]byte, error) {
	if len(wrapped) < 2 || wrapped[0] != pkcs11WrapVersion {
		return nil, fmt.Errorf("pkcs11: unwrap key: %w", ErrMalformed)
	}
	n := int(wrapped[1])
	if n == 0 || len(wrapped) != 2+n+NonceSize+KeySize+TagSize {
		return nil, fmt.Errorf("pkcs11: unwrap key: %w: %d bytes", ErrMalformed, len(wrapped))
	}
	label := string(wrapped[2 : 2+n])
	iv := wrapped[2+n : 2+n+NonceSize]
	ct := wrapped[2+n+NonceSize:]
	var out []byte
	err := p.run(label, func(h pkcs11.ObjectHandle) error {
		params := pkcs11.NewGCMParams(iv, aad, TagSize*8)
		defer params.Free()
		if err := p.p.DecryptInit(p.session, []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_GCM, params)}, h); err != nil {
			return classify("decrypt init", err)
		}
		pt, err := p.p.Decrypt(p.session, ct)
		if err != nil {
			return classify("decrypt", err)
		}
		out = pt
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) != KeySize {
		Wipe(out)
		return nil, fmt.Errorf("pkcs11: unwrap key: %w: %d bytes", ErrMalformed, len(out))
	}
	return out, nil
}

// Close closes the session and releases this handle on the module. It does
// not call C_Finalize or C_Logout: the login state and the library are shared
// by every user of the module in the process (another PKCS11 provider, an
// administrative session), and closing the last session logs out.
func (p *PKCS11) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.p == nil {
		return nil
	}
	if p.open {
		p.p.CloseSession(p.session)
		p.open = false
	}
	p.p.Destroy()
	p.p = nil
	return nil
}
