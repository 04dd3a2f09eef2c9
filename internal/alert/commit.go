package alert

import (
	"context"
	"sync"
	"time"

	"custos/internal/catalog"
)

// maxCommitBatch bounds the evaluations written in one transaction.
const maxCommitBatch = 256

// commitTimeout bounds one group commit. A commit that started finishes
// even if the evaluation that led it is cancelled.
const commitTimeout = 30 * time.Second

// groupCommitter writes the evaluations that finish at about the same time
// in one catalog transaction: the first caller becomes the leader and
// commits everything queued while it waits; the others wait for their
// result. Rule evaluations are cheap next to a durable commit (an fsync),
// so this is what lets one machine keep up with many rules.
type groupCommitter struct {
	mu      sync.Mutex // guards pending and busy
	pending []*pendingCommit
	busy    bool
}

type pendingCommit struct {
	c    catalog.EvaluationCommit
	done chan error
}

// commit writes c, batched with concurrent commits. Each commit is still
// all-or-nothing and keeps its own compare-and-swap on the rule state.
func (s *Service) commit(ctx context.Context, c catalog.EvaluationCommit) error {
	p := &pendingCommit{c: c, done: make(chan error, 1)}
	g := &s.committer
	g.mu.Lock()
	g.pending = append(g.pending, p)
	if g.busy {
		g.mu.Unlock()
		return <-p.done
	}
	g.busy = true
	for {
		batch := g.pending
		if len(batch) > maxCommitBatch {
			batch = batch[:maxCommitBatch]
		}
		g.pending = g.pending[len(batch):]
		if len(batch) == 0 {
			g.busy = false
			g.mu.Unlock()
			break
		}
		g.mu.Unlock()
		cs := make([]catalog.EvaluationCommit, len(batch))
		for i, b := range batch {
			cs[i] = b.c
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
		errs, err := s.cat.CommitEvaluations(cctx, cs)
		cancel()
		for i, b := range batch {
			if err != nil {
				b.done <- err
			} else {
				b.done <- errs[i]
			}
		}
		g.mu.Lock()
	}
	return <-p.done
}
