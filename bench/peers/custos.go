package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"strings"

	"custos/bench/gen"
)

// custosPeer is Custos itself: the custos binary as a child process, loaded
// through the Logs Ingestion API with the Azure SDK and asked through the
// Log Analytics Query API, exactly as bench/ingest and bench/query do.
type custosPeer struct {
	binary string
	t      *gen.Target
	rules  []string
	logf   func(string, ...any)
}

func (p *custosPeer) Name() string { return "Custos" }

func (p *custosPeer) Version() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "working tree"
	}
	return "commit " + strings.TrimSpace(string(out))
}

func (p *custosPeer) Start(ctx context.Context) error {
	t, err := gen.StartTarget(ctx, gen.TargetOptions{Binary: p.binary, Logf: p.logf})
	if err != nil {
		return err
	}
	p.t = t
	p.rules, err = gen.Setup(ctx, t.Client, 8)
	return err
}

func (p *custosPeer) Load(ctx context.Context, d *dataset, clients int) error {
	_, err := gen.Load(ctx, p.t.Client, p.rules, d.gen, gen.LoadOptions{Clients: clients, BatchRows: d.batchRows})
	return err
}

// Settle stops the server gracefully (memtables become parts), starts it
// again and waits until its background merges are done (the server idle), as
// ClickHouse's OPTIMIZE … FINAL: otherwise merges run during the timed
// queries, their CPU counts as query CPU, and each merge replaces parts the
// warm queries had just read.
func (p *custosPeer) Settle(ctx context.Context) error {
	if err := p.t.Restart(ctx); err != nil {
		return err
	}
	settle(p.t)
	return nil
}

func (p *custosPeer) Restart(ctx context.Context) error { return p.t.Restart(ctx) }

func (p *custosPeer) Query(ctx context.Context, q question) (int, error) {
	status, code, body, err := p.t.Client.QueryRaw(ctx, q.KQL)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("custos: %d %s: %.300s", status, code, body)
	}
	var res struct {
		Tables []struct {
			Rows []json.RawMessage `json:"rows"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(body, &res); err != nil || len(res.Tables) == 0 {
		return 0, fmt.Errorf("custos: unreadable result: %v", err)
	}
	return len(res.Tables[0].Rows), nil
}

func (p *custosPeer) DataDir() string { return p.t.DataDir }
func (p *custosPeer) PID() int        { return p.t.PID() }

func (p *custosPeer) Close() {
	if p.t != nil {
		_ = p.t.Close()
	}
}
