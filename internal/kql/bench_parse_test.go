package kql

import "testing"

const benchQuery = `let lookback = 7d;
let baseline = AppRequests
    | where TimeGenerated between (ago(lookback) .. ago(1d))
    | summarize p95 = percentile(DurationMs, 95) by Name;
AppRequests
| where TimeGenerated > ago(1d) and Name has "api" and ResultCode !in ("200", "204")
| parse Url with * "/api/" Route:string "?" *
| summarize current95 = percentile(DurationMs, 95), n = count() by Name, bin(TimeGenerated, 5m)
| join kind=inner baseline on Name
| extend Ratio = round(current95 / p95, 2), Tag = dynamic({"team": "web", "tier": [1, 2]})
| where Ratio > 1.5
| order by Ratio desc
| take 100`

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchQuery)))
	for b.Loop() {
		if _, err := Parse(benchQuery); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRedact(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchQuery)))
	for b.Loop() {
		_ = Redact(benchQuery)
	}
}
