package server

import (
	"crypto/rand"
	"crypto/tls"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// issuePair issues a server certificate for localhost from a CA in caDir
// and copies it to certFile/keyFile, returning its serial number.
func issuePair(t *testing.T, caDir, certFile, keyFile string, notBefore time.Time) *big.Int {
	t.Helper()
	ca, err := ensureCA(caDir, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// Remove the previous pair so that a fresh one is issued.
	os.Remove(filepath.Join(caDir, serverCertFile))
	if _, err := ensureServerCert(caDir, ca, serverHostnames(nil), notBefore, rand.Reader); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(caDir, serverCertFile), filepath.Join(caDir, serverKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	for src, dst := range map[string]string{serverCertFile: certFile, serverKeyFile: keyFile} {
		b, err := os.ReadFile(filepath.Join(caDir, src))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeFileAtomic(dst, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return pair.Leaf.SerialNumber
}

func servedSerial(t *testing.T, ts *testServer) *big.Int {
	t.Helper()
	conn, err := tls.Dial("tcp", ts.Addr().String(), &tls.Config{RootCAs: caPool(t, ts.caDir(t)), ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

// caDir is where reload tests keep their own CA (the user-supplied chain).
func (ts *testServer) caDir(t *testing.T) string {
	return filepath.Join(filepath.Dir(ts.cfg.DataDir), "userca")
}

func TestReloadUserCertificate(t *testing.T) {
	dir := newDataDir(t)
	caDir := filepath.Join(filepath.Dir(dir), "userca")
	certFile := filepath.Join(filepath.Dir(dir), "user.crt")
	keyFile := filepath.Join(filepath.Dir(dir), "user.key")
	serialA := issuePair(t, caDir, certFile, keyFile, time.Now())

	cfg := testConfig(dir)
	cfg.TLS.CertFile, cfg.TLS.KeyFile = certFile, keyFile
	ts := startServer(t, cfg)
	if got := servedSerial(t, ts); got.Cmp(serialA) != 0 {
		t.Fatalf("served serial %x; want the user certificate %x", got, serialA)
	}

	// A keep-alive connection opened before the reload keeps working.
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: caPool(t, caDir), ServerName: "localhost"}}}
	resp, err := c.Get(ts.url("/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body) // drain so that the connection is reused
	resp.Body.Close()

	serialB := issuePair(t, caDir, certFile, keyFile, time.Now().Add(-time.Minute))
	if err := ts.ReloadTLS(); err != nil {
		t.Fatalf("ReloadTLS: %v", err)
	}
	if got := servedSerial(t, ts); got.Cmp(serialB) != 0 {
		t.Fatalf("after reload served serial %x; want %x", got, serialB)
	}
	resp, err = c.Get(ts.url("/healthz"))
	if err != nil {
		t.Fatalf("request on the pre-reload connection: %v", err)
	}
	resp.Body.Close()
	if got := resp.TLS.PeerCertificates[0].SerialNumber; got.Cmp(serialA) != 0 {
		t.Errorf("keep-alive connection was re-established (serial %x); want the original %x", got, serialA)
	}

	// A broken file keeps the current certificate.
	if err := os.WriteFile(keyFile, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.ReloadTLS(); err == nil {
		t.Fatal("ReloadTLS accepted a broken key file")
	}
	if got := servedSerial(t, ts); got.Cmp(serialB) != 0 {
		t.Fatalf("after a failed reload served serial %x; want %x", got, serialB)
	}

	// A real SIGHUP reloads too.
	serialC := issuePair(t, caDir, certFile, keyFile, time.Now().Add(-2*time.Minute))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for servedSerial(t, ts).Cmp(serialC) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the certificate within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
