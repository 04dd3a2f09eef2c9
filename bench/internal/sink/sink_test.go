package sink

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"os"
	"testing"
)

func TestSinkCountsGzipAndPlainBatches(t *testing.T) {
	s, err := Start(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ca, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatal("CA file holds no certificate")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	post := func(path string, body []byte, gz bool) int {
		t.Helper()
		if gz {
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			zw.Write(body)
			zw.Close()
			body = b.Bytes()
		}
		req, _ := http.NewRequest("POST", s.URL+path, bytes.NewReader(body))
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("/bench/oauth2/v2.0/token", nil, false); got != 200 {
		t.Fatalf("token: got %d; want 200", got)
	}
	if got := post("/dataCollectionRules/dcr-1/streams/Microsoft-Syslog", []byte(`[{"a":1},{"a":2},{"a":3}]`), true); got != 204 {
		t.Fatalf("gzip batch: got %d; want 204", got)
	}
	if got := post("/dataCollectionRules/dcr-1/streams/Microsoft-Perf", []byte(`[{"b":1}]`), false); got != 204 {
		t.Fatalf("plain batch: got %d; want 204", got)
	}
	if got := post("/dataCollectionRules/dcr-1/streams/Microsoft-Perf", []byte(`{not json`), false); got != 400 {
		t.Fatalf("bad batch: got %d; want 400", got)
	}
	if got, want := s.Count("Microsoft-Syslog"), int64(3); got != want {
		t.Errorf("Count(Syslog) = %d; want %d", got, want)
	}
	if got, want := s.Count("Microsoft-Perf"), int64(1); got != want {
		t.Errorf("Count(Perf) = %d; want %d", got, want)
	}
	if got, want := s.Records(), int64(4); got != want {
		t.Errorf("Records() = %d; want %d", got, want)
	}
	if got, want := s.Batches(), int64(2); got != want {
		t.Errorf("Batches() = %d; want %d", got, want)
	}
}
