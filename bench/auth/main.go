// Command auth benchmarks Custos's token service and authentication path:
// token issuance over HTTPS, authenticated no-op requests over HTTPS with
// keep-alive (Authenticate + Authorize per request), and token validation in
// isolation. It runs everything in one process on 127.0.0.1 with a real
// SQLite catalog and platform key in a temporary directory, and writes
// bench/results/auth-<date>.md.
//
//	go run ./bench/auth                 # defaults: 10 s per phase, 16 connections
//	go run ./bench/auth -d 5s -c 32 -out /tmp/auth.md
//
// Client and server share the machine's cores, so the request rates are a
// lower bound for a server with the machine to itself.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"custos/internal/catalog"
	"custos/internal/crypt"
	"custos/internal/identity"
	"custos/internal/rbac"
)

func main() {
	dur := flag.Duration("d", 10*time.Second, "duration of each HTTP phase")
	conns := flag.Int("c", 16, "concurrent client connections")
	out := flag.String("out", "", "result file (default bench/results/auth-<date>.md)")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join("bench", "results", "auth-"+time.Now().Format("2006-01-02")+".md")
	}
	if err := run(*dur, *conns, *out); err != nil {
		log.Fatal(err)
	}
}

const workspaceScope = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/default/providers/Microsoft.OperationalInsights/workspaces/default"

func run(dur time.Duration, conns int, out string) error {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "custos-bench-auth-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	cat, err := catalog.Open(ctx, catalog.Options{Path: filepath.Join(dir, "catalog.db")})
	if err != nil {
		return err
	}
	defer cat.Close()
	const tenant = "0b0b0b0b-0000-4000-8000-000000000001"
	if _, err := cat.CreateTenant(ctx, catalog.Tenant{ID: tenant, DisplayName: "bench"}); err != nil {
		return err
	}
	pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "platform.key"))
	if err != nil {
		return err
	}
	cert, pool, err := selfSigned()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	base := "https://" + ln.Addr().String()

	ts, err := identity.NewTokenService(identity.TokenServiceOptions{
		Store: cat, Keys: pk, Issuer: base,
		Tenants: identity.TenantFunc(func(ctx context.Context, id string) (bool, error) {
			_, err := cat.Tenant(ctx, id)
			if errors.Is(err, catalog.ErrNotFound) {
				return false, nil
			}
			return err == nil, err
		}),
		// The issuance phase makes no failed attempts; keep the defaults.
	})
	if err != nil {
		return err
	}
	authz := rbac.New(rbac.Options{Store: cat})
	sp, secret, err := ts.CreateServicePrincipal(ctx, tenant, "bench")
	if err != nil {
		return err
	}
	if err := cat.CreateRoleAssignment(ctx, rbac.RoleAssignment{
		ID:   "/providers/Microsoft.Authorization/roleAssignments/0c0c0c0c-0000-4000-8000-000000000001",
		Name: "0c0c0c0c-0000-4000-8000-000000000001", Scope: "/", RoleDefinitionID: rbac.RoleReader,
		PrincipalID: sp.ObjectID, PrincipalType: string(identity.KindServicePrincipal),
	}); err != nil {
		return err
	}

	mux := http.NewServeMux()
	for _, p := range ts.Patterns() {
		mux.Handle(p, ts.Handler())
	}
	mux.HandleFunc("GET /noop", func(w http.ResponseWriter, r *http.Request) {
		p, err := ts.Authenticate(r, identity.AudienceManagement)
		if err != nil {
			w.Header().Set("WWW-Authenticate", ts.Challenge(r, err))
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		d, err := authz.Authorize(r.Context(), p, rbac.ActionWorkspaceRead, workspaceScope)
		if err != nil || !d.Allowed {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	srv := &http.Server{Handler: mux, ErrorLog: log.New(io.Discard, "", 0),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
	}}
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {sp.AppID}, "client_secret": {secret},
		"scope": {"https://management.azure.com/.default openid offline_access profile"}}.Encode()
	tokenURL := base + "/" + tenant + "/oauth2/v2.0/token"
	var token string
	issue := func() error {
		resp, err := client.Post(tokenURL, "application/x-www-form-urlencoded", strings.NewReader(form))
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("token status %d: %s", resp.StatusCode, body)
		}
		if token == "" {
			s := string(body)
			i := strings.Index(s, `"access_token":"`)
			token = s[i+len(`"access_token":"`):]
			token = token[:strings.IndexByte(token, '"')]
		}
		return nil
	}
	if err := issue(); err != nil {
		return err
	}
	noop := func() error {
		req, _ := http.NewRequest("GET", base+"/noop", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent {
			return fmt.Errorf("noop status %d", resp.StatusCode)
		}
		return nil
	}

	log.Printf("phase 1: token issuance, %v, %d connections", dur, conns)
	issuance, err := load(dur, conns, issue)
	if err != nil {
		return err
	}
	log.Printf("phase 2: authenticated no-op requests, %v, %d connections", dur, conns)
	requests, err := load(dur, conns, noop)
	if err != nil {
		return err
	}
	log.Printf("phase 3: token validation")
	warm, cold, err := validation(ctx, ts, sp)
	if err != nil {
		return err
	}

	report := renderReport(dur, conns, issuance, requests, warm, cold)
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(report), 0o644); err != nil {
		return err
	}
	fmt.Print(report)
	log.Printf("wrote %s", out)
	return nil
}

// result summarises one load phase.
type result struct {
	n         int
	elapsed   time.Duration
	p50, p99  time.Duration
	cpuPerReq time.Duration // process user+system CPU per request (client and server)
	rate      float64
}

// load runs f from conns goroutines for dur and measures it.
func load(dur time.Duration, conns int, f func() error) (result, error) {
	// Warm up connections.
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); _ = f() }()
	}
	wg.Wait()

	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(dur)
	lat := make([][]time.Duration, conns)
	var failed atomic.Pointer[error]
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			l := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) {
				t0 := time.Now()
				if err := f(); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				l = append(l, time.Since(t0))
			}
			lat[i] = l
		}(i)
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := cpuTime() - cpu0
	if e := failed.Load(); e != nil {
		return result{}, *e
	}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	r := result{n: len(all), elapsed: elapsed}
	if len(all) > 0 {
		r.p50 = all[len(all)*50/100]
		r.p99 = all[len(all)*99/100]
		r.cpuPerReq = cpu / time.Duration(len(all))
	}
	r.rate = float64(len(all)) / elapsed.Seconds()
	return r, nil
}

// validation measures ValidateToken: warm (a token already validated, the
// steady state of a client reusing its token) and cold (each token seen for
// the first time: signature verification and claim checks).
func validation(ctx context.Context, ts *identity.TokenService, sp identity.ServicePrincipal) (warm, cold time.Duration, err error) {
	tok, _, err := ts.IssueToken(ctx, sp, identity.AudienceManagement)
	if err != nil {
		return 0, 0, err
	}
	const warmN = 200000
	if _, err := ts.ValidateToken(ctx, tok, identity.AudienceManagement); err != nil {
		return 0, 0, err
	}
	t0 := time.Now()
	for i := 0; i < warmN; i++ {
		if _, err := ts.ValidateToken(ctx, tok, identity.AudienceManagement); err != nil {
			return 0, 0, err
		}
	}
	warm = time.Since(t0) / warmN
	const coldN = 2000
	toks := make([]string, coldN)
	for i := range toks {
		if toks[i], _, err = ts.IssueToken(ctx, sp, identity.AudienceManagement); err != nil {
			return 0, 0, err
		}
	}
	t0 = time.Now()
	for _, tk := range toks {
		if _, err := ts.ValidateToken(ctx, tk, identity.AudienceManagement); err != nil {
			return 0, 0, err
		}
	}
	cold = time.Since(t0) / coldN
	return warm, cold, nil
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func renderReport(dur time.Duration, conns int, issuance, requests result, warm, cold time.Duration) string {
	var b strings.Builder
	host, _ := os.Hostname()
	fmt.Fprintf(&b, "# Auth benchmark — %s\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Command: `go run ./bench/auth -d %v -c %d`\n\n", dur, conns)
	fmt.Fprintf(&b, "Machine: %s, %d logical CPUs (GOMAXPROCS %d), %s/%s, %s, host %s\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version(), host)
	b.WriteString("Setup: one process; HTTPS (TLS 1.3, ECDSA P-256 certificate) on 127.0.0.1 with keep-alive; real SQLite catalog and\n")
	b.WriteString("platform key in a temporary directory. Client and server share the CPUs, so rates are a lower bound and\n")
	b.WriteString("CPU per request includes the client's share. The machine may be shared with other work while this runs.\n\n")
	b.WriteString("| Phase | Requests | Rate (req/s) | p50 | p99 | CPU per request |\n|---|---|---|---|---|---|\n")
	row := func(name string, r result) {
		fmt.Fprintf(&b, "| %s | %d | %.0f | %v | %v | %v |\n", name, r.n, r.rate,
			r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.cpuPerReq.Round(time.Microsecond))
	}
	row("token issuance (POST /{tenant}/oauth2/v2.0/token, client_credentials)", issuance)
	row("authenticated no-op (Authenticate + Authorize, GET /noop)", requests)
	b.WriteString("\n| Token validation (ValidateToken, in process) | Time per call |\n|---|---|\n")
	fmt.Fprintf(&b, "| warm (token seen before; cached) | %v |\n", warm)
	fmt.Fprintf(&b, "| cold (first sight: ES256 verify + claims) | %v |\n\n", cold)
	b.WriteString("Targets: >= 5,000 authenticated requests/s on 2 cores; validation <= 50 µs warm.\n")
	fmt.Fprintf(&b, "Result: %.0f authenticated requests/s (%s); warm validation %v (%s).\n",
		requests.rate, verdict(requests.rate >= 5000), warm, verdict(warm <= 50*time.Microsecond))
	return b.String()
}

func verdict(ok bool) string {
	if ok {
		return "meets target"
	}
	return "BELOW target"
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

// selfSigned returns a server certificate for 127.0.0.1 and a pool trusting it.
func selfSigned() (tls.Certificate, *x509.CertPool, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "custos bench"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, err
	}
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, pool, nil
}
