package kube

import (
	"context"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapeHTTPSWithCABundle: an https target whose certificate comes from
// a CA outside the system pool fails verification with the system pool
// alone and is scraped once that CA is in the bundle (LoadCAPool).
func TestScrapeHTTPSWithCABundle(t *testing.T) {
	reg := prometheus.NewRegistry()
	up := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tls_target_up", Help: "Up."})
	up.Set(1)
	reg.MustRegister(up)
	srv := httptest.NewTLSServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer srv.Close()

	sys := NewScraper(ScrapeOptions{})
	defer sys.Close()
	if _, _, err := sys.Scrape(context.Background(), srv.URL+"/metrics"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("scrape verified against the system pool only: %v; want a certificate error", err)
	}

	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool, err := LoadCAPool(ca)
	if err != nil {
		t.Fatal(err)
	}
	sc := NewScraper(ScrapeOptions{RootCAs: pool})
	defer sc.Close()
	samples, _, err := sc.Scrape(context.Background(), srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range samples {
		found = found || (string(s.Metric["__name__"]) == "tls_target_up" && s.Value == 1)
	}
	if !found {
		t.Errorf("tls_target_up not scraped: %v", samples)
	}

	if _, err := LoadCAPool(filepath.Join(dir, "missing.crt")); err == nil {
		t.Error("missing CA file accepted")
	}
	bad := filepath.Join(dir, "bad.crt")
	os.WriteFile(bad, []byte("not a certificate"), 0o600)
	if _, err := LoadCAPool(bad); err == nil {
		t.Error("CA file without a certificate accepted")
	}
}
