package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// clickhousePeer is Debian's clickhouse-server (18.16), configured by the
// harness to listen on loopback only, with a MergeTree table partitioned by
// day and ordered by time, loaded over the HTTP interface with
// INSERT ... FORMAT JSONEachRow.
type clickhousePeer struct {
	dir    string
	port   int
	proc   *child
	client *http.Client
}

const clickhouseTable = `CREATE TABLE IF NOT EXISTS logs (
  TimeGenerated DateTime, Host String, Level String, Service String, Message String,
  Latency Float64, User String, Status Int32, RequestId String
) ENGINE = MergeTree() PARTITION BY toDate(TimeGenerated) ORDER BY TimeGenerated`

func (p *clickhousePeer) Name() string { return "ClickHouse" }

func (p *clickhousePeer) Version() string {
	// clickhouse-server 18 has no --version: ask the package manager.
	out, err := exec.Command("dpkg-query", "-W", "-f=${Version}", "clickhouse-server").Output()
	if err != nil {
		return "unknown"
	}
	return "Debian " + strings.TrimSpace(string(out))
}

func (p *clickhousePeer) Start(ctx context.Context) error {
	if err := aptInstall("clickhouse-server", "clickhouse-server", "clickhouse-client"); err != nil {
		return err
	}
	var err error
	if p.dir, err = os.MkdirTemp("", "peers-clickhouse-"); err != nil {
		return err
	}
	if p.port, err = freePort(); err != nil {
		return err
	}
	tcp, err := freePort()
	if err != nil {
		return err
	}
	for _, d := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(p.dir, d), 0o755); err != nil {
			return err
		}
	}
	config := fmt.Sprintf(`<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>%[1]s/log/server.log</log><errorlog>%[1]s/log/error.log</errorlog><size>100M</size><count>2</count></logger>
  <http_port>%[2]d</http_port>
  <tcp_port>%[3]d</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <path>%[1]s/data/</path>
  <tmp_path>%[1]s/tmp/</tmp_path>
  <user_files_path>%[1]s/user_files/</user_files_path>
  <format_schema_path>%[1]s/format_schemas/</format_schema_path>
  <users_config>%[1]s/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>1073741824</mark_cache_size>
  <uncompressed_cache_size>1073741824</uncompressed_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
`, p.dir, p.port, tcp)
	users := `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>8000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`
	if err := os.WriteFile(filepath.Join(p.dir, "config.xml"), []byte(config), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(p.dir, "users.xml"), []byte(users), 0o644); err != nil {
		return err
	}
	p.client = &http.Client{Timeout: 10 * time.Minute}
	p.proc = &child{name: "clickhouse-server", argv: []string{"clickhouse-server", "--config-file=" + filepath.Join(p.dir, "config.xml")},
		log: filepath.Join(p.dir, "stdout.log")}
	if err := p.proc.start(ctx, httpOK(p.url()+"/ping")); err != nil {
		return err
	}
	_, err = p.exec(ctx, clickhouseTable)
	return err
}

func (p *clickhousePeer) url() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

func (p *clickhousePeer) exec(ctx context.Context, sql string) ([]byte, error) {
	return post(ctx, p.client, p.url()+"/", "text/plain", strings.NewReader(sql))
}

func (p *clickhousePeer) Load(ctx context.Context, d *dataset, clients int) error {
	insert := p.url() + "/?query=" + url.QueryEscape("INSERT INTO logs FORMAT JSONEachRow")
	return d.each(ctx, clients, func(ctx context.Context, first, n int) error {
		_, err := post(ctx, p.client, insert, "application/x-ndjson", bytes.NewReader(d.jsonLines(first, n, true)))
		return err
	})
}

// Settle merges the table's parts (OPTIMIZE ... FINAL), ClickHouse's own
// steady state after background merges.
func (p *clickhousePeer) Settle(ctx context.Context) error {
	_, err := p.exec(ctx, "OPTIMIZE TABLE logs FINAL")
	return err
}

func (p *clickhousePeer) Restart(ctx context.Context) error {
	p.proc.stop()
	return p.proc.start(ctx, httpOK(p.url()+"/ping"))
}

func (p *clickhousePeer) Query(ctx context.Context, q question) (int, error) {
	out, err := p.exec(ctx, q.ClickHouse+" FORMAT TSV")
	if err != nil {
		return 0, err
	}
	return bytes.Count(out, []byte("\n")), nil
}

func (p *clickhousePeer) DataDir() string { return filepath.Join(p.dir, "data") }
func (p *clickhousePeer) PID() int        { return p.proc.pid() }

func (p *clickhousePeer) Close() {
	if p.proc != nil {
		p.proc.stop()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}
