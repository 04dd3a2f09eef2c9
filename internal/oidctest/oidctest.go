// Package oidctest runs custos-test-oidc (test/install-oidc.sh: the
// zitadel/oidc example OpenID Provider over HTTPS) as a child process for
// the external-issuer tests, and reports its issuer URL and CA.
//
// It is imported by tests only, never by a production package.
package oidctest

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Provider is a running custos-test-oidc.
type Provider struct {
	Issuer string // the issuer URL it printed
	Dir    string // its state directory
	CAFile string // PEM of the CA that signed its TLS certificate
}

// Start runs custos-test-oidc with args (besides -dir) until the test ends.
// It fails, saying what to run, when the program is not installed.
func Start(t testing.TB, args ...string) *Provider {
	t.Helper()
	bin, err := exec.LookPath("custos-test-oidc")
	if err != nil {
		gopath, _ := exec.Command("go", "env", "GOPATH").Output()
		bin = filepath.Join(strings.TrimSpace(string(gopath)), "bin", "custos-test-oidc")
		if _, serr := os.Stat(bin); serr != nil {
			t.Fatalf("custos-test-oidc is not installed: run test/install-oidc.sh (builds the zitadel/oidc example provider from the Go module proxy)")
		}
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"-dir", dir}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "ISSUER" {
				lines <- f[1]
				break
			}
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out) // the provider never blocks on a full pipe
	}()
	var issuer string
	select {
	case issuer = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatal("custos-test-oidc did not start within 30 s")
	}
	if issuer == "" {
		t.Fatal("custos-test-oidc exited without an issuer line")
	}
	return &Provider{Issuer: issuer, Dir: dir, CAFile: filepath.Join(dir, "ca.pem")}
}
