package kube

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// TestScrapePromhttp scrapes a real endpoint served by client_golang's
// promhttp (text and protobuf negotiated as a Prometheus server does) and
// checks the InsightsMetrics rows: names, values, labels as JSON tags,
// histograms and summaries flattened, NaN skipped.
func TestScrapePromhttp(t *testing.T) {
	reg := prometheus.NewRegistry()
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "shop_requests_total", Help: "Requests."}, []string{"code", "method"})
	reqs.WithLabelValues("200", "GET").Add(41)
	reqs.WithLabelValues("500", "POST").Inc()
	temp := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shop_queue_depth", Help: "Depth.", ConstLabels: prometheus.Labels{"queue": "orders"}})
	temp.Set(7.5)
	lat := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "shop_latency_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}})
	lat.Observe(0.05)
	lat.Observe(0.5)
	sum := prometheus.NewSummary(prometheus.SummaryOpts{Name: "shop_size_bytes", Help: "Size.", Objectives: map[float64]float64{0.5: 0.05}})
	sum.Observe(100)
	nan := prometheus.NewGauge(prometheus.GaugeOpts{Name: "shop_nan", Help: "NaN."})
	nan.Set(math.NaN())
	reg.MustRegister(reqs, temp, lat, sum, nan)
	for _, proto := range []bool{false, true} {
		h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !proto {
				r.Header.Set("Accept", "text/plain")
			}
			h.ServeHTTP(w, r)
		}))
		sc := NewScraper(ScrapeOptions{})
		samples, trunc, err := sc.Scrape(context.Background(), srv.URL+"/metrics")
		sc.Close()
		srv.Close()
		if err != nil || trunc {
			t.Fatalf("proto=%v: %v %v", proto, err, trunc)
		}
		rows := PrometheusRows(samples, map[string]string{"namespace": "shop", "pod_name": "web-1"}, "node-1", "/subscriptions/s/x")
		got := map[string]float64{}
		for _, r := range rows {
			var tags map[string]string
			if err := json.Unmarshal([]byte(r.Tags), &tags); err != nil {
				t.Fatal(err)
			}
			if r.Namespace != "prometheus" || r.Computer != "node-1" || r.ResourceID != "/subscriptions/s/x" || tags["pod_name"] != "web-1" || tags["namespace"] != "shop" {
				t.Errorf("row %+v", r)
			}
			if time.Since(r.TimeGenerated) > time.Minute {
				t.Errorf("TimeGenerated %v", r.TimeGenerated)
			}
			key := r.Name
			for _, l := range []string{"code", "method", "queue", "le", "quantile"} {
				if v, ok := tags[l]; ok {
					key += "," + l + "=" + v
				}
			}
			got[key] = r.Val
		}
		for k, want := range map[string]float64{
			"shop_requests_total,code=200,method=GET":  41,
			"shop_requests_total,code=500,method=POST": 1,
			"shop_queue_depth,queue=orders":            7.5,
			"shop_latency_seconds_bucket,le=0.1":       1,
			"shop_latency_seconds_bucket,le=1":         2,
			"shop_latency_seconds_bucket,le=+Inf":      2,
			"shop_latency_seconds_count":               2,
			"shop_latency_seconds_sum":                 0.55,
			"shop_size_bytes,quantile=0.5":             100,
			"shop_size_bytes_count":                    1,
		} {
			if v, ok := got[k]; !ok || math.Abs(v-want) > 1e-9 {
				t.Errorf("proto=%v: %s = %v (present %v); want %v", proto, k, v, ok, want)
			}
		}
		for k := range got {
			if strings.HasPrefix(k, "shop_nan") {
				t.Errorf("NaN sample kept: %s", k)
			}
		}
	}
}

func TestScrapeLimitsAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("m 1\n", 1000)))
		case "/many":
			for i := 0; i < 100; i++ {
				w.Write([]byte("m{i=\"" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + "\"} 1\n"))
			}
		case "/bad":
			w.Write([]byte("m{ 1\n"))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	sc := NewScraper(ScrapeOptions{MaxBytes: 100, MaxSamples: 10})
	defer sc.Close()
	if _, _, err := sc.Scrape(context.Background(), srv.URL+"/big"); !errors.Is(err, ErrScrapeTooLarge) {
		t.Errorf("big: %v", err)
	}
	sc = NewScraper(ScrapeOptions{MaxSamples: 10})
	if v, trunc, err := sc.Scrape(context.Background(), srv.URL+"/many"); err != nil || !trunc || len(v) != 10 {
		t.Errorf("many: %d %v %v", len(v), trunc, err)
	}
	if _, _, err := sc.Scrape(context.Background(), srv.URL+"/bad"); err == nil {
		t.Error("bad exposition accepted")
	}
	if _, _, err := sc.Scrape(context.Background(), srv.URL+"/nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}
