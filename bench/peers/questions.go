package main

import (
	"fmt"
	"time"

	"custos/bench/logdata"
)

// question is one benchmark question asked of every system in its own
// language. Each text answers the same question over the same rows.
type question struct {
	Name       string
	KQL        string // Custos
	ClickHouse string // ClickHouse SQL (18.16 dialect)
	LogsQL     string // VictoriaLogs
	DuckDB     string // DuckDB SQL
}

// questions returns the question set for a dataset generated with o: the
// window query covers the last hour of the data ("recent data").
func questions(o logdata.Options) []question {
	end := o.End
	start := end.Add(-time.Hour)
	iso := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	chTime := func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") }
	return []question{
		{
			Name:       "count by hour and level",
			KQL:        "Bench_CL | summarize count() by bin(TimeGenerated, 1h), Level",
			ClickHouse: "SELECT toStartOfHour(TimeGenerated) AS h, Level, count() FROM logs GROUP BY h, Level",
			LogsQL:     "* | stats by (_time:1h, Level) count() as c",
			DuckDB:     "SELECT date_trunc('hour', TimeGenerated) AS h, Level, count(*) FROM logs GROUP BY ALL",
		},
		{
			Name:       "top 10 users (high cardinality)",
			KQL:        "Bench_CL | summarize count() by User | top 10 by count_",
			ClickHouse: "SELECT User, count() AS c FROM logs GROUP BY User ORDER BY c DESC LIMIT 10",
			LogsQL:     "* | stats by (User) count() as c | sort by (c desc) | limit 10",
			DuckDB:     "SELECT User, count(*) AS c FROM logs GROUP BY User ORDER BY c DESC LIMIT 10",
		},
		{
			Name:       "rare term needle",
			KQL:        fmt.Sprintf("Bench_CL | where Message has %q | count", logdata.RareTerm),
			ClickHouse: fmt.Sprintf("SELECT count() FROM logs WHERE positionCaseInsensitive(Message, '%s') > 0", logdata.RareTerm),
			LogsQL:     fmt.Sprintf("i(%s) | count() as c", logdata.RareTerm),
			DuckDB:     fmt.Sprintf("SELECT count(*) FROM logs WHERE Message ILIKE '%%%s%%'", logdata.RareTerm),
		},
		{
			Name:       "avg/max/percentiles by service",
			KQL:        "Bench_CL | summarize avg(Latency), max(Latency), percentiles(Latency, 50, 95, 99) by Service",
			ClickHouse: "SELECT Service, avg(Latency), max(Latency), quantiles(0.5, 0.95, 0.99)(Latency) FROM logs GROUP BY Service",
			LogsQL:     "* | stats by (Service) avg(Latency) as a, max(Latency) as m, quantile(0.5, Latency) as p50, quantile(0.95, Latency) as p95, quantile(0.99, Latency) as p99",
			DuckDB:     "SELECT Service, avg(Latency), max(Latency), quantile_cont(Latency, [0.5, 0.95, 0.99]) FROM logs GROUP BY Service",
		},
		{
			Name:       "distinct users",
			KQL:        "Bench_CL | summarize dcount(User)",
			ClickHouse: "SELECT uniq(User) FROM logs",
			LogsQL:     "* | stats count_uniq(User) as u",
			DuckDB:     "SELECT approx_count_distinct(User) FROM logs",
		},
		{
			Name: "last hour by service",
			KQL: fmt.Sprintf("Bench_CL | where TimeGenerated >= datetime(%s) and TimeGenerated < datetime(%s) | summarize count() by Service",
				iso(start), iso(end)),
			ClickHouse: fmt.Sprintf("SELECT Service, count() FROM logs WHERE TimeGenerated >= toDateTime('%s') AND TimeGenerated < toDateTime('%s') GROUP BY Service",
				chTime(start), chTime(end)),
			LogsQL: fmt.Sprintf("_time:[%s, %s) | stats by (Service) count() as c", iso(start), iso(end)),
			DuckDB: fmt.Sprintf("SELECT Service, count(*) FROM logs WHERE TimeGenerated >= TIMESTAMPTZ '%s' AND TimeGenerated < TIMESTAMPTZ '%s' GROUP BY Service",
				iso(start), iso(end)),
		},
	}
}
