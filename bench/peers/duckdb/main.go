// Command duckdb-runner is the DuckDB side of bench/peers: DuckDB embedded
// through its Go bindings (cgo, which is why this is a separate module that
// the custos module never imports). The harness starts it as a child
// process, so its CPU time and memory are measured like a server's, and
// talks to it over stdin/stdout, one command per line:
//
//	load FILE   create table logs from a JSON lines file (DuckDB's read_json)
//	query SQL   run SQL, answer "ok ROWS"
//
// Every answer is one line: "ok ..." or "error MESSAGE".
package main

import (
	"bufio"
	"database/sql"
	"flag"
	"fmt"
	"os"
	"strings"

	_ "github.com/duckdb/duckdb-go/v2"
)

func main() {
	dbPath := flag.String("db", "", "database file")
	threads := flag.Int("threads", 0, "DuckDB threads (0: DuckDB's default, all cores)")
	flag.Parse()
	if *dbPath == "" {
		fmt.Fprintln(os.Stderr, "duckdb-runner: -db is required")
		os.Exit(2)
	}
	db, err := sql.Open("duckdb", *dbPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "duckdb-runner:", err)
		os.Exit(1)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if *threads > 0 {
		if _, err := db.Exec(fmt.Sprintf("SET threads = %d", *threads)); err != nil {
			fmt.Fprintln(os.Stderr, "duckdb-runner:", err)
			os.Exit(1)
		}
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 16<<20)
	out := bufio.NewWriter(os.Stdout)
	answer := func(format string, args ...any) {
		fmt.Fprintf(out, format+"\n", args...)
		out.Flush()
	}
	answer("ok ready")
	for in.Scan() {
		verb, arg, _ := strings.Cut(in.Text(), " ")
		switch verb {
		case "load":
			q := fmt.Sprintf(`CREATE TABLE logs AS SELECT * FROM read_json('%s', format = 'newline_delimited',
				columns = {TimeGenerated: 'TIMESTAMPTZ', Host: 'VARCHAR', Level: 'VARCHAR', Service: 'VARCHAR', Message: 'VARCHAR',
				           Latency: 'DOUBLE', "User": 'VARCHAR', Status: 'INTEGER', RequestId: 'VARCHAR'})`, strings.ReplaceAll(arg, "'", "''"))
			if _, err := db.Exec(q); err != nil {
				answer("error %s", oneLine(err))
				continue
			}
			if _, err := db.Exec("CHECKPOINT"); err != nil {
				answer("error %s", oneLine(err))
				continue
			}
			answer("ok loaded")
		case "query":
			rows, err := db.Query(arg)
			if err != nil {
				answer("error %s", oneLine(err))
				continue
			}
			n := 0
			for rows.Next() {
				n++
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				answer("error %s", oneLine(err))
				continue
			}
			answer("ok %d", n)
		default:
			answer("error unknown command %q", verb)
		}
	}
}

func oneLine(err error) string { return strings.ReplaceAll(err.Error(), "\n", " ") }
