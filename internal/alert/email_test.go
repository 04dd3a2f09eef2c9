package alert

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/internal/catalog"
)

// mailpitPath finds the mailpit binary: $CUSTOS_MAILPIT, PATH, then
// $(go env GOPATH)/bin. The email test fails (it does not skip) without it.
func mailpitPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CUSTOS_MAILPIT"); p != "" {
		return p
	}
	if p, err := exec.LookPath("mailpit"); err == nil {
		return p
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
			gopath = strings.TrimSpace(string(out))
		}
	}
	if gopath != "" {
		p := filepath.Join(gopath, "bin", "mailpit")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("mailpit is not installed: the email tests send real mail to it. Install it with test/install-mailpit.sh " +
		"(go install github.com/axllent/mailpit@v1.33.1) or point CUSTOS_MAILPIT at the binary")
	return ""
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// selfSigned writes a certificate for 127.0.0.1 and its key, and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "smtp.crt"), filepath.Join(dir, "smtp.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// mailpit is a running mailpit with SMTP (STARTTLS required, any
// credentials accepted) and its HTTP API on loopback.
type mailpit struct {
	smtpPort, apiPort int
}

func startMailpit(t *testing.T, extra ...string) (*mailpit, *x509.CertPool) {
	t.Helper()
	bin := mailpitPath(t)
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	m := &mailpit{smtpPort: freePort(t), apiPort: freePort(t)}
	args := append([]string{
		"--smtp", fmt.Sprintf("127.0.0.1:%d", m.smtpPort), "--listen", fmt.Sprintf("127.0.0.1:%d", m.apiPort),
		"--database", filepath.Join(dir, "mail.db"), "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile,
		"--smtp-auth-accept-any", "--disable-version-check", "--quiet",
	}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", m.smtpPort), time.Second)
		if err == nil {
			c.Close()
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/messages", m.apiPort))
			if err == nil {
				resp.Body.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return m, pool
}

type mailpitMessage struct {
	ID      string `json:"ID"`
	Subject string `json:"Subject"`
	To      []struct {
		Address string `json:"Address"`
	} `json:"To"`
	Text string `json:"Text"`
}

func (m *mailpit) messages(t *testing.T) []mailpitMessage {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/messages", m.apiPort))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Messages []mailpitMessage `json:"messages"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	for i := range out.Messages {
		r, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/message/%s", m.apiPort, out.Messages[i].ID))
		if err != nil {
			t.Fatal(err)
		}
		var full mailpitMessage
		_ = json.NewDecoder(r.Body).Decode(&full)
		r.Body.Close()
		out.Messages[i].Text = full.Text
	}
	return out.Messages
}

// TestEmailThroughMailpit: a firing rule's email receiver gets a message
// through a real SMTP server, over STARTTLS with authentication, once.
func TestEmailThroughMailpit(t *testing.T) {
	mp, pool := startMailpit(t, "--smtp-require-starttls")
	e := newEnv(t, envConfig{smtp: SMTPOptions{Host: "127.0.0.1", Port: mp.smtpPort, Security: "starttls",
		Username: "custos", Password: []byte("pw"), From: "alerts@custos.test", RootCAs: pool}})
	e.putGroup("mail", `{"groupShortName":"mail","emailReceivers":[{"name":"oncall","emailAddress":"oncall@example.com","useCommonAlertSchema":true}]}`)
	end := e.fireOnce("r", "mail")
	e.deliverAt(end)
	e.deliverAt(end.Add(time.Minute))
	msgs := mp.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("mailpit has %d messages; want 1", len(msgs))
	}
	m := msgs[0]
	if !strings.HasPrefix(m.Subject, "Fired:Sev2 Azure Monitor Alert r on ") || len(m.To) != 1 || m.To[0].Address != "oncall@example.com" {
		t.Fatalf("message: %+v", m)
	}
	if !strings.Contains(m.Text, "azureMonitorCommonAlertSchema") || !strings.Contains(m.Text, "Query: Perf") {
		t.Fatalf("body: %s", m.Text)
	}
	ns := e.notifications()
	if len(ns) != 1 || ns[0].Status != catalog.NotificationSucceeded {
		t.Fatalf("notification: %+v", ns)
	}
}

// TestEmailRefusesWithoutTLS: a server that offers no STARTTLS is not sent
// credentials or mail, and plain SMTP to a remote host is refused.
func TestEmailRefusesWithoutTLS(t *testing.T) {
	mp, _ := startMailpit(t)
	// mailpit offers STARTTLS here; a client that trusts no root must fail
	// the handshake and send nothing.
	e := newEnv(t, envConfig{smtp: SMTPOptions{Host: "127.0.0.1", Port: mp.smtpPort, Username: "u", Password: []byte("p"),
		From: "alerts@custos.test", RootCAs: x509.NewCertPool()}})
	e.putGroup("mail", `{"groupShortName":"mail","emailReceivers":[{"name":"oncall","emailAddress":"oncall@example.com","useCommonAlertSchema":false}]}`)
	end := e.fireOnce("r", "mail")
	e.deliverAt(end)
	if n := len(mp.messages(t)); n != 0 {
		t.Fatalf("mail sent over an unverified TLS session: %d", n)
	}
	ns := e.notifications()
	if len(ns) != 1 || !strings.Contains(ns[0].LastError, "starttls") {
		t.Fatalf("notification: %+v", ns)
	}

	s := &Service{opts: Options{SMTP: SMTPOptions{Host: "mail.example.com", Security: "insecure-none", Timeout: time.Second}}, now: time.Now}
	if err := s.smtpSend(context.Background(), "a@example.com", []byte("x")); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("plain SMTP to a remote host: %v", err)
	}
}
