package crypt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func mustKey(t testing.TB, id string) *Key {
	t.Helper()
	k, err := GenerateKey(id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustKey(t, "ws-1")
	for _, pt := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("abc"), 10000)} {
		ct, err := k.Seal([]byte("prefix"), pt, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(ct, []byte("prefix")) {
			t.Fatalf("Seal did not append to dst")
		}
		ct = ct[len("prefix"):]
		if got, want := len(ct), len(pt)+k.Overhead(); got != want {
			t.Fatalf("ciphertext len %d; want %d", got, want)
		}
		got, err := k.Open(nil, ct, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatalf("got %q; want %q", got, pt)
		}
		if len(pt) >= 8 && bytes.Contains(ct, pt) { // a 1-byte plaintext may occur in random bytes
			t.Fatal("plaintext visible in ciphertext")
		}
	}
}

func TestOpenRejectsTampering(t *testing.T) {
	k := mustKey(t, "key-a")
	ct, err := k.Seal(nil, []byte("hello secret"), []byte("ws/table/part/0/col"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(nil, ct, []byte("ws/table/part/1/col")); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong AAD: got %v; want ErrAuth", err)
	}
	for i := range ct {
		bad := append([]byte(nil), ct...)
		bad[i] ^= 0x01
		_, err := k.Open(nil, bad, []byte("ws/table/part/0/col"))
		if err == nil {
			t.Fatalf("flipped byte %d: Open succeeded", i)
		}
		if !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrKeyMismatch) {
			t.Fatalf("flipped byte %d: unexpected error %v", i, err)
		}
	}
	other := mustKey(t, "key-b")
	if _, err := other.Open(nil, ct, []byte("ws/table/part/0/col")); !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("other key: got %v; want ErrKeyMismatch", err)
	}
	// Same ID, different key material: authentication must fail.
	same := mustKey(t, "key-a")
	if _, err := same.Open(nil, ct, []byte("ws/table/part/0/col")); !errors.Is(err, ErrAuth) {
		t.Fatalf("same ID other key: got %v; want ErrAuth", err)
	}
}

func TestOpenTruncation(t *testing.T) {
	k := mustKey(t, "k")
	ct, err := k.Seal(nil, []byte("some plaintext"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for data := ct[:len(ct)-1]; ; data = data[:len(data)-1] {
		if _, err := k.Open(nil, data, nil); err == nil {
			t.Fatalf("prefix of %d bytes opened", len(data))
		}
		if len(data) == 0 {
			break
		}
	}
}

func TestKeyHierarchy(t *testing.T) {
	ctx := context.Background()
	pk, err := OpenPlatformKey(filepath.Join(t.TempDir(), "platform.key"))
	if err != nil {
		t.Fatal(err)
	}
	wsAAD := []byte("workspace-key/ws-1")
	wsKey, wrappedWS, err := WrapNewKey(ctx, pk, "ws-1", wsAAD)
	if err != nil {
		t.Fatal(err)
	}
	partAAD := []byte("part-key/ws-1/T/p1")
	partKey, wrappedPart, err := WrapNewKey(ctx, wsKey, "p1", partAAD)
	if err != nil {
		t.Fatal(err)
	}
	ct, err := partKey.Seal(nil, []byte("row data"), []byte("block 0"))
	if err != nil {
		t.Fatal(err)
	}

	ws2, err := UnwrapKey(ctx, pk, "ws-1", wrappedWS, wsAAD)
	if err != nil {
		t.Fatal(err)
	}
	part2, err := UnwrapKey(ctx, ws2, "p1", wrappedPart, partAAD)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := part2.Open(nil, ct, []byte("block 0"))
	if err != nil || string(pt) != "row data" {
		t.Fatalf("got %q, %v; want row data", pt, err)
	}
	if _, err := UnwrapKey(ctx, pk, "ws-2", wrappedWS, []byte("workspace-key/ws-2")); !errors.Is(err, ErrAuth) {
		t.Fatalf("unwrap with another workspace's AAD: got %v; want ErrAuth", err)
	}
	if _, _, err := WrapNewKey(ctx, nil, "x", nil); !errors.Is(err, ErrSealed) {
		t.Fatalf("nil provider: got %v; want ErrSealed", err)
	}
	if _, err := UnwrapKey(ctx, nil, "x", wrappedWS, nil); !errors.Is(err, ErrSealed) {
		t.Fatalf("nil provider: got %v; want ErrSealed", err)
	}
	partKey.Destroy()
	if !bytes.Equal(partKey.raw, make([]byte, KeySize)) {
		t.Fatal("Destroy did not wipe the key")
	}
}

func TestNewKeyValidates(t *testing.T) {
	if _, err := NewKey("", make([]byte, KeySize)); err == nil {
		t.Fatal("empty ID accepted")
	}
	if _, err := NewKey(strings.Repeat("a", 256), make([]byte, KeySize)); err == nil {
		t.Fatal("256-byte ID accepted")
	}
	if _, err := NewKey("a", make([]byte, 16)); err == nil {
		t.Fatal("16-byte key accepted")
	}
	k := mustKey(t, "a")
	if _, err := k.WrapKey(context.Background(), []byte("short"), nil); err == nil {
		t.Fatal("wrapping a short key accepted")
	}
	short, err := k.Seal(nil, []byte("short"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.UnwrapKey(context.Background(), short, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("unwrap of a non-key: got %v; want ErrMalformed", err)
	}
}

func TestPlatformKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "platform.key")
	pk, err := OpenPlatformKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 || st.Size() != KeySize {
		t.Fatalf("key file mode %v size %d; want 0600, %d", st.Mode().Perm(), st.Size(), KeySize)
	}
	ct, err := pk.Seal([]byte("client-secret"), []byte("sp/123/secret"))
	if err != nil {
		t.Fatal(err)
	}

	pk2, err := OpenPlatformKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if pk2.KeyID() != pk.KeyID() {
		t.Fatalf("reopened key ID %q; want %q", pk2.KeyID(), pk.KeyID())
	}
	pt, err := pk2.Open(ct, []byte("sp/123/secret"))
	if err != nil || string(pt) != "client-secret" {
		t.Fatalf("got %q, %v", pt, err)
	}
	if _, err := pk2.Open(ct, []byte("sp/124/secret")); !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong AAD: got %v; want ErrAuth", err)
	}

	other, err := OpenPlatformKey(filepath.Join(dir, "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	if other.KeyID() == pk.KeyID() {
		t.Fatal("two generated keys have the same ID")
	}

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPlatformKey(path); !errors.Is(err, ErrUnsafeKeyFile) {
		t.Fatalf("0644 key file: got %v; want ErrUnsafeKeyFile", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenPlatformKey(path); err == nil {
		t.Fatal("short key file accepted")
	}
	if _, err := OpenPlatformKey(dir); !errors.Is(err, ErrUnsafeKeyFile) {
		t.Fatalf("directory as key file: got %v; want ErrUnsafeKeyFile", err)
	}
	if strings.Contains(fmt.Sprint(pk), string(pk.key.raw)) || !strings.HasPrefix(pk.String(), "crypt.PlatformKey(") {
		t.Fatalf("String leaks or is wrong: %s", pk)
	}
}

func TestSecretRedacted(t *testing.T) {
	s := Secret("hunter2")
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("x", slog.Any("secret", s))
	j, err := json.Marshal(struct{ S Secret }{s})
	if err != nil {
		t.Fatal(err)
	}
	outs := []string{buf.String(), string(j), fmt.Sprint(s), fmt.Sprintf("%v %s %x %q %#v %+v", s, s, s, s, s, s), s.String()}
	for _, o := range outs {
		if strings.Contains(o, "hunter2") || strings.Contains(o, "68756e746572") {
			t.Fatalf("secret leaked: %s", o)
		}
		if !strings.Contains(o, "REDACTED") {
			t.Fatalf("got %q; want REDACTED", o)
		}
	}
	if string(s.Bytes()) != "hunter2" || !s.Equal(Secret("hunter2")) || s.Equal(Secret("hunter3")) {
		t.Fatal("Bytes/Equal wrong")
	}
	s.Wipe()
	if string(s) != "\x00\x00\x00\x00\x00\x00\x00" {
		t.Fatal("Wipe did not clear")
	}
}

func FuzzOpen(f *testing.F) {
	k, err := NewKey("fuzz-key", bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	for _, pt := range []string{"", "a", "hello world"} {
		ct, err := k.Seal(nil, []byte(pt), []byte("aad"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
	}
	f.Add([]byte{1, 0})
	f.Add([]byte{1, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, perr := ParseEnvelope(b)
		pt, err := k.Open(nil, b, []byte("aad"))
		if perr != nil && err == nil {
			t.Fatalf("Open accepted what ParseEnvelope rejected: %v", perr)
		}
		if err == nil {
			if h.KeyID != "fuzz-key" {
				t.Fatalf("opened envelope for key %q", h.KeyID)
			}
			// Only authentic envelopes open; re-sealing must round-trip.
			ct, err := k.Seal(nil, pt, []byte("aad"))
			if err != nil {
				t.Fatal(err)
			}
			if pt2, err := k.Open(nil, ct, []byte("aad")); err != nil || !bytes.Equal(pt, pt2) {
				t.Fatalf("round trip failed: %v", err)
			}
		}
	})
}
