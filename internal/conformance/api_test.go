package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"custos/internal/engine"
	"custos/internal/query"
	"custos/internal/rbac"
	"custos/internal/stacktest"
)

// apiStack is Custos's query path assembled from the real packages —
// catalog (SQLite), encrypted store, token service, RBAC and the query API
// — behind HTTPS on loopback, with a service principal that has Log
// Analytics Reader on the workspace.
type apiStack struct {
	srv   *httptest.Server
	ws    string
	token string
}

func newAPIStack(t *testing.T) *apiStack {
	t.Helper()
	ctx := context.Background()
	base := stacktest.Open(t)
	cat, boot, st := base.Cat, base.Boot, base.Store
	srv, mux, ts := base.Serve(t)
	sp, secret, err := ts.CreateServicePrincipal(ctx, boot.Tenant.ID, "conformance")
	if err != nil {
		t.Fatal(err)
	}
	stacktest.Assign(t, cat, boot.Workspace.ID(), rbac.RoleLogAnalyticsReader, sp.ObjectID, "33333333-3333-4333-8333-333333333333")
	authz := rbac.New(rbac.Options{Store: cat})
	q := query.New(query.Options{
		Workspaces: query.CatalogWorkspaces{C: cat},
		Executor:   query.EngineExecutor{Engine: engine.New(engine.Options{}), Source: st},
		Authorizer: authz,
	})
	for _, rt := range q.Routes() {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, stacktest.ServeRoute(ts, authz, rt))
	}
	mux.Handle("/", ts.Handler())

	cred, err := azidentity.NewClientSecretCredential(boot.Tenant.ID, sp.AppID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: srv.URL + "/"},
			Transport: srv.Client(),
			Retry:     policy.RetryOptions{MaxRetries: -1},
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://api.loganalytics.io/.default"}})
	if err != nil {
		t.Fatalf("get token: %v", err)
	}
	return &apiStack{srv: srv, ws: boot.Workspace.CustomerID, token: tok.Token}
}

// runner posts each query to /v1/workspaces/{id}/query and renders the
// response in the case format; errors are read from the Azure envelope.
func (s *apiStack) runner() Runner {
	return func(ctx context.Context, q string) (string, error) {
		body, _ := json.Marshal(map[string]string{"query": q})
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.srv.URL+"/v1/workspaces/"+s.ws+"/query", bytes.NewReader(body))
		if err != nil {
			return "", err
		}
		req.Header.Set("Authorization", "Bearer "+s.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			return "", err
		}
		if resp.StatusCode != http.StatusOK {
			var env struct {
				Error struct {
					Code       string `json:"code"`
					Message    string `json:"message"`
					InnerError *struct {
						Code string `json:"code"`
						Line int    `json:"line"`
						Pos  int    `json:"pos"`
					} `json:"innererror"`
				} `json:"error"`
			}
			if err := json.Unmarshal(data, &env); err != nil {
				return "", fmt.Errorf("status %d: %s", resp.StatusCode, data)
			}
			if ie := env.Error.InnerError; ie != nil && ie.Line > 0 {
				return ErrorText(ie.Code, ie.Line, ie.Pos), nil
			}
			return "error: " + env.Error.Code + ": " + env.Error.Message + "\n", nil
		}
		return FormatWire(data)
	}
}

// TestConformanceAPI runs every case through the real query API over HTTPS
// and prints the pass table per operator and function.
func TestConformanceAPI(t *testing.T) {
	cs := loadCases(t)
	s := newAPIStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rs := Run(ctx, cs, s.runner())
	table := PassTable(rs)
	fmt.Fprint(os.Stdout, table)
	for _, r := range rs {
		if !r.Pass {
			t.Errorf("%s:%d %s\n%s\ngot (API):\n%swant:\n%s", r.Case.File, r.Case.Line, r.Case.Name, r.Case.Query, r.Got, r.Case.Want)
		}
	}
	if !strings.HasPrefix(table, "KQL conformance:") {
		t.Fatalf("pass table missing its header")
	}
}
