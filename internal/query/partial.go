package query

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"custos/internal/store"
)

// Partial results. When the store left data out of a query — a part that
// failed its integrity check and is quarantined (store.WithPartialReport) —
// the answer is still HTTP 200 with the rows that could be read, plus Log
// Analytics' partial-failure member next to "tables":
//
//	"error": {"code": "PartialError", "message": "There were some errors when processing your query.",
//	          "details": [{"code": "DataIntegrityError", "message": "...", "target": "<table>"}]}
//
// The Azure SDK for Go surfaces it as Results.Error (code "PartialError").

// withPartialReport returns a context under which the store reports what a
// query skipped.
func withPartialReport(ctx context.Context) (context.Context, *store.PartialReport) {
	return store.WithPartialReport(ctx)
}

// partialError renders the skipped parts as the "error" member, or nil when
// nothing was skipped. It names tables, parts and days, never file paths.
func partialError(rep *store.PartialReport) json.RawMessage {
	sk := rep.Skipped()
	if len(sk) == 0 {
		return nil
	}
	type detail struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Target  string `json:"target,omitempty"`
	}
	details := make([]detail, 0, len(sk))
	for _, q := range sk {
		rows := "its rows are"
		if q.Rows >= 0 {
			rows = fmt.Sprintf("its %d rows are", q.Rows)
		}
		details = append(details, detail{Code: "DataIntegrityError", Target: q.Table,
			Message: fmt.Sprintf("Part %s of table %s (%s, TimeGenerated %s to %s) failed its integrity check and is quarantined; %s missing from this result.",
				q.PartID, q.Table, q.Day, q.MinTime.Format(time.RFC3339), q.MaxTime.Format(time.RFC3339), rows)})
	}
	b, err := json.Marshal(map[string]any{
		"code":    "PartialError",
		"message": "There were some errors when processing your query.",
		"details": details,
	})
	if err != nil {
		panic(fmt.Sprintf("BUG: marshal partial error: %v", err))
	}
	return b
}
