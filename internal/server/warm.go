package server

import (
	"context"
	"log/slog"
	"time"
)

// warmTimeout bounds the query warm-up before the server accepts requests.
const warmTimeout = 5 * time.Second

// warmQueries runs the query API's warm-up (query.API.Warm) before the
// listener is served: the first query after a restart then finds the
// catalog's workspace entries cached and the compiler and engine run once,
// instead of paying for them itself; then the catalog's pages are read
// into SQLite's page caches (catalog.DB.WarmPages). A failure is logged and serving goes
// on: the warm-up only moves work, it decides nothing.
func (s *Server) warmQueries(ctx context.Context) {
	if s.query == nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, warmTimeout)
	defer cancel()
	rep, err := s.query.Warm(ctx)
	if err != nil {
		s.log.Warn("query warm-up failed", slog.Any("error", err), slog.Duration("took", rep.Took))
	} else {
		s.log.Info("query warm-up", slog.Int("workspaces", rep.Workspaces), slog.Bool("compiled", rep.Compiled),
			slog.Duration("took", rep.Took))
	}
	// Last, after every start-up write: the catalog's pages in the page
	// caches of the connections the first requests read from.
	start := time.Now()
	size, read, err := s.catalog.WarmPages(ctx)
	if err != nil {
		s.log.Warn("catalog warm-up failed", slog.Any("error", err))
		return
	}
	s.log.Info("catalog warm-up", slog.Int64("bytes", size), slog.Bool("read", read), slog.Duration("took", time.Since(start)))
}
