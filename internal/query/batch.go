package query

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"custos/internal/api"
	"custos/internal/identity"
	"custos/internal/rbac"
	"custos/internal/store"
)

// batchResponse is one entry of {"responses":[...]}.
type batchResponse struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    json.RawMessage   `json:"body,omitempty"`
}

func (a *API) batch(w http.ResponseWriter, r *http.Request, _ rbac.Decision) {
	data, err := readBody(r, a.opts.MaxBodyBytes)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	br, err := DecodeBatch(data)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, _ := api.PrincipalFrom(r.Context())
	out := struct {
		Responses []batchResponse `json:"responses"`
	}{Responses: make([]batchResponse, 0, len(br.Requests))}
	for _, it := range br.Requests {
		out.Responses = append(out.Responses, a.batchItem(r, p, it))
	}
	api.WriteJSON(w, http.StatusOK, out)
}

// batchItem runs one request of a batch and never fails the whole batch.
func (a *API) batchItem(r *http.Request, p identity.Principal, it BatchItem) batchResponse {
	ctx := r.Context()
	fail := func(err error) batchResponse {
		e := toAPIError(err)
		if e.Status >= 500 {
			a.log.LogAttrs(ctx, slog.LevelError, "batch request failed",
				slog.String("correlation_id", api.CorrelationIDFrom(ctx)), slog.String("batch_id", it.ID), slog.Any("error", err))
			e = &api.Error{Status: e.Status, Code: e.Code, Message: e.Message}
		}
		body, _ := json.Marshal(struct {
			Error *api.Error `json:"error"`
		}{e})
		return batchResponse{ID: it.ID, Status: e.Status, Headers: map[string]string{"x-ms-error-code": e.Code}, Body: body}
	}
	method := strings.ToUpper(it.Method)
	if method == "" {
		method = http.MethodGet
	}
	path := strings.ToLower(strings.TrimSuffix(it.Path, "/"))
	if path != "/query" || (method != http.MethodGet && method != http.MethodPost) {
		return fail(pathNotFound())
	}
	ws, err := a.opts.Workspaces.WorkspaceByCustomerID(ctx, it.Workspace)
	if err != nil {
		if isNotFound(err, ErrWorkspaceNotFound) {
			return fail(&Error{Code: "FailedToResolveResource", Kind: api.KindInvalid,
				Message: "Failed to resolve workspace '" + truncate(it.Workspace, 128) + "'."})
		}
		return fail(err)
	}
	var body Body
	if method == http.MethodPost && it.Body != nil {
		body = *it.Body
	}
	if err := a.authorize(ctx, p, ws); err != nil {
		a.audit(ctx, r, ws, body, store.TimeRange{}, statusOf(err), 0, nil, false)
		return fail(err)
	}
	if strings.TrimSpace(body.Query) == "" {
		return fail(badArgument("QueryValidationError", "Parameter 'query' cannot be null or empty."))
	}
	h := http.Header{}
	keys := make([]string, 0, len(it.Headers))
	for k := range it.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h.Add(k, it.Headers[k])
	}
	var au auditState
	start := time.Now()
	res, err := a.run(ctx, ws, body, a.prefer(h), &au)
	a.audit(ctx, r, ws, body, au.timespan, statusOf(err), time.Since(start), au.out, au.conditional)
	if err != nil {
		return fail(err)
	}
	return batchResponse{ID: it.ID, Status: http.StatusOK, Headers: map[string]string{}, Body: bytes.TrimRight(res, "\n")}
}

// authorize checks the query action on one batch workspace; deny is a 403.
// Table access and row conditions are resolved by run, as for a single query.
func (a *API) authorize(ctx context.Context, p identity.Principal, ws Workspace) error {
	if a.opts.Authorizer == nil || p.ObjectID == "" {
		return insufficientAccess()
	}
	d, err := a.opts.Authorizer.Authorize(ctx, p, ActionRead, rbac.Scope(ws.ResourceID))
	if err != nil || !d.Allowed {
		return insufficientAccess()
	}
	return nil
}
