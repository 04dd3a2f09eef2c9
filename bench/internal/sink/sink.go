// Package sink is the counting HTTPS ingestion endpoint that the agent
// benchmarks (bench/agent, bench/kube) point custos-agent at, so that the
// machine's CPU goes to the agent and not to a Custos server.
//
// It serves the two calls the agent makes: the token endpoint
// (POST /{tenant}/oauth2/v2.0/token, answering a fixed bearer token) and the
// Logs Ingestion API (POST /dataCollectionRules/{id}/streams/{stream}), which
// decompresses each batch, counts its records per stream and answers 204.
// It checks nothing else: it is a load sink for benchmarks, never a test of
// the agent's authentication.
package sink

import (
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Sink is a running counting ingestion endpoint on 127.0.0.1. Safe for
// concurrent use.
type Sink struct {
	// URL is the sink's base URL (https://127.0.0.1:port), the agent's endpoint.
	URL string
	// CAFile is the PEM file of the sink's self-signed certificate, for the
	// agent's caFile.
	CAFile string

	srv *http.Server
	der []byte

	mu      sync.Mutex // guards counts, records and batches
	counts  map[string]int64
	records int64
	batches int64
}

// Start starts a sink with a fresh self-signed certificate for 127.0.0.1 and
// localhost, and writes that certificate to dir/ca.pem.
func Start(dir string) (*Sink, error) {
	der, key, err := selfSigned()
	if err != nil {
		return nil, fmt.Errorf("sink certificate: %w", err)
	}
	s := &Sink{CAFile: filepath.Join(dir, "ca.pem"), der: der, counts: map[string]int64{}}
	if err := os.WriteFile(s.CAFile, s.CertificatePEM(), 0o644); err != nil {
		return nil, fmt.Errorf("write sink CA: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"token_type":"Bearer","expires_in":3600,"access_token":"bench-token"}`)
	})
	mux.HandleFunc("POST /dataCollectionRules/{id}/streams/{stream}", s.ingest)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink listen: %w", err)
	}
	s.URL = "https://" + ln.Addr().String()
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}}
	go s.srv.ServeTLS(ln, "", "")
	return s, nil
}

func (s *Sink) ingest(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	var recs []json.RawMessage
	if err := json.NewDecoder(body).Decode(&recs); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.counts[r.PathValue("stream")] += int64(len(recs))
	s.records += int64(len(recs))
	s.batches++
	s.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// Count is the number of records received so far on one stream
// (for example "Microsoft-Syslog").
func (s *Sink) Count(stream string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[stream]
}

// Records is the number of records received so far on all streams.
func (s *Sink) Records() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.records
}

// Batches is the number of accepted requests so far.
func (s *Sink) Batches() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.batches
}

// CertificatePEM is the sink's certificate in PEM, to put into a CA bundle.
func (s *Sink) CertificatePEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.der})
}

// Close stops the sink.
func (s *Sink) Close() error { return s.srv.Close() }

func selfSigned() (der []byte, key *ecdsa.PrivateKey, err error) {
	key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bench-sink"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err = x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	return der, key, err
}
