package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDirectoryAndLoginEndToEnd runs the directory verbs against a real
// server (a user, a group, a group role assignment), then `custos login`
// with the device code flow — the test plays the browser — and a verb run
// as the signed-in user with no service principal configured, then logout.
func TestDirectoryAndLoginEndToEnd(t *testing.T) {
	clearClientEnv(t)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	dir := t.TempDir()
	startCustos(t, dir)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("a long and good password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var user struct{ Name string }
	if err := json.Unmarshal([]byte(custos(t, dir, "", "principal", "create", "Alice", "--user", "alice@example.test", "--password-file", pwFile)), &user); err != nil || user.Name == "" {
		t.Fatalf("create user: %v", err)
	}
	var group struct{ Name string }
	if err := json.Unmarshal([]byte(custos(t, dir, "", "group", "create", "readers", "--description", "read everything")), &group); err != nil {
		t.Fatal(err)
	}
	custos(t, dir, "", "group", "add-member", "readers", user.Name)
	if out := custos(t, dir, "", "group", "members", "readers"); !strings.Contains(out, user.Name) || !strings.Contains(out, "User") {
		t.Fatalf("members: %s", out)
	}
	custos(t, dir, "", "role", "assignment", "create", "--role", "Reader", "--assignee", group.Name, "--assignee-principal-type", "Group", "--scope", "/")
	var sp struct {
		Name       string
		Properties struct{ AppID string }
	}
	if err := json.Unmarshal([]byte(custos(t, dir, "", "principal", "create", "uploader")), &sp); err != nil {
		t.Fatal(err)
	}
	certFile := filepath.Join(t.TempDir(), "cert.pem")
	if err := os.WriteFile(certFile, []byte(selfSignedPEM(t)), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := custos(t, dir, "", "principal", "credential", "add", sp.Properties.AppID, "--cert", certFile); !strings.Contains(out, "AsymmetricX509Cert") {
		t.Fatalf("credential add --cert: %s", out)
	}
	if out := custos(t, dir, "", "principal", "list"); !strings.Contains(out, "uploader") {
		t.Fatalf("principal list: %s", out)
	}

	// custos login: the device code flow, with this test as the browser.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	root := newRootCmd()
	root.SetArgs([]string{"login", "--data-dir", dir})
	var out strings.Builder
	root.SetOut(&out)
	root.SetErr(pw)
	go func() { done <- root.ExecuteContext(context.Background()); pw.Close() }()
	sc := bufio.NewScanner(pr)
	var msg string
	for sc.Scan() {
		if strings.Contains(sc.Text(), "To sign in") {
			msg = sc.Text()
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	m := regexp.MustCompile(`open (https://\S+) in a browser and enter the code ([A-Z]{4}-[A-Z]{4})`).FindStringSubmatch(msg)
	if m == nil {
		t.Fatalf("login message: %q", msg)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, "tls", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	res, err := browser.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	csrf := regexp.MustCompile(`name="csrf_token" value="([^"]+)"`).FindSubmatch(page)
	if csrf == nil {
		t.Fatalf("device login page: %s", page)
	}
	res, err = browser.PostForm(m[1], url.Values{"csrf_token": {string(csrf[1])}, "user_code": {m[2]},
		"username": {"alice@example.test"}, "password": {"a long and good password"}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("device sign-in: %d", res.StatusCode)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("custos login: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("custos login did not finish")
	}
	loginFile := filepath.Join(os.Getenv("XDG_CONFIG_HOME"), "custos", "login.json")
	if fi, err := os.Stat(loginFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login file: %v %v", fi, err)
	}

	// A verb with no service principal configured runs as alice (Reader
	// through the group): reads work, writes are refused.
	outUsers, stderr, err := runCLI(t, "", "principal", "list", "--users", "-o", "json")
	if err != nil || !strings.Contains(outUsers, "alice@example.test") {
		t.Fatalf("principal list as the logged-in user: %v %s %s", err, outUsers, stderr)
	}
	if _, _, err := runCLI(t, "", "group", "create", "not-allowed"); err == nil || !strings.Contains(err.Error(), "AuthorizationFailed") {
		t.Fatalf("a Reader created a group: %v", err)
	}
	if o, _, err := runCLI(t, "", "logout"); err != nil || !strings.Contains(o, "logged out") {
		t.Fatalf("logout: %v %s", err, o)
	}
	if _, err := os.Stat(loginFile); !os.IsNotExist(err) {
		t.Fatalf("login file after logout: %v", err)
	}
	if _, _, err := runCLI(t, "", "principal", "list", "--users"); err == nil {
		t.Fatal("a verb worked after logout with no credentials")
	}
}
