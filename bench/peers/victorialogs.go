package main

import (
	"bufio"
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

// victoriaLogsVersion is the VictoriaLogs release the harness builds with
// `go install` from the Go module proxy.
const victoriaLogsVersion = "v1.52.1"

// victoriaLogsPeer is VictoriaLogs built from the module proxy, listening on
// loopback, loaded through its JSON lines ingestion endpoint with Service as
// the stream field and Message as the message field.
type victoriaLogsPeer struct {
	binDir string // where the built binary is kept between runs
	bin    string
	dir    string
	port   int
	proc   *child
	client *http.Client
}

func (p *victoriaLogsPeer) Name() string    { return "VictoriaLogs" }
func (p *victoriaLogsPeer) Version() string { return victoriaLogsVersion }

// install builds victoria-logs into binDir unless it is there already.
func (p *victoriaLogsPeer) install(ctx context.Context) error {
	p.bin = filepath.Join(p.binDir, "victoria-logs")
	if _, err := os.Stat(p.bin); err == nil {
		return nil
	}
	if err := os.MkdirAll(p.binDir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "install", "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@"+victoriaLogsVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+p.binDir, "GOFLAGS=-mod=mod")
	cmd.Dir = os.TempDir() // outside the custos module
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go install victoria-logs@%s: %v: %s", victoriaLogsVersion, err, out)
	}
	return nil
}

func (p *victoriaLogsPeer) Start(ctx context.Context) error {
	if err := p.install(ctx); err != nil {
		return err
	}
	var err error
	if p.dir, err = os.MkdirTemp("", "peers-victorialogs-"); err != nil {
		return err
	}
	if p.port, err = freePort(); err != nil {
		return err
	}
	p.client = &http.Client{Timeout: 10 * time.Minute}
	p.proc = &child{name: "victoria-logs", log: filepath.Join(p.dir, "server.log"), argv: []string{p.bin,
		"-storageDataPath=" + filepath.Join(p.dir, "data"), fmt.Sprintf("-httpListenAddr=127.0.0.1:%d", p.port),
		"-retentionPeriod=100y", "-loggerLevel=WARN"}}
	return p.proc.start(ctx, httpOK(p.url()+"/health"))
}

func (p *victoriaLogsPeer) url() string { return fmt.Sprintf("http://127.0.0.1:%d", p.port) }

func (p *victoriaLogsPeer) Load(ctx context.Context, d *dataset, clients int) error {
	insert := p.url() + "/insert/jsonline?" + url.Values{
		"_time_field": {"TimeGenerated"}, "_msg_field": {"Message"}, "_stream_fields": {"Service"},
	}.Encode()
	return d.each(ctx, clients, func(ctx context.Context, first, n int) error {
		_, err := post(ctx, p.client, insert, "application/stream+json", bytes.NewReader(d.jsonLines(first, n, false)))
		return err
	})
}

// Settle flushes buffered rows so that they are searchable and on disk
// (VictoriaLogs merges in the background on its own).
func (p *victoriaLogsPeer) Settle(ctx context.Context) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.url()+"/internal/force_flush", nil)
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

func (p *victoriaLogsPeer) Restart(ctx context.Context) error {
	p.proc.stop()
	return p.proc.start(ctx, httpOK(p.url()+"/health"))
}

func (p *victoriaLogsPeer) Query(ctx context.Context, q question) (int, error) {
	out, err := post(ctx, p.client, p.url()+"/select/logsql/query", "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"query": {q.LogsQL}}.Encode()))
	if err != nil {
		return 0, err
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n, sc.Err()
}

func (p *victoriaLogsPeer) DataDir() string { return filepath.Join(p.dir, "data") }
func (p *victoriaLogsPeer) PID() int        { return p.proc.pid() }

func (p *victoriaLogsPeer) Close() {
	if p.proc != nil {
		p.proc.stop()
	}
	if p.dir != "" {
		_ = os.RemoveAll(p.dir)
	}
}
