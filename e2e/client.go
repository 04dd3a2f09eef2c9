package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	azingest "github.com/Azure/azure-sdk-for-go/sdk/monitor/ingestion/azlogs"
	azquery "github.com/Azure/azure-sdk-for-go/sdk/monitor/query/azlogs"
)

// Token audiences, as Azure spells them.
const (
	audienceManagement = "https://management.azure.com"
	audienceIngestion  = "https://monitor.azure.com"
	audienceQuery      = "https://api.loganalytics.io"
)

// Client talks to one server through the Azure SDK and raw HTTPS: to the
// control plane as its bootstrap admin and, after GrantDataRoles, to the
// data plane (ingestion and query) as a separate data principal, since the
// bootstrap admin reads no log data in just-in-time mode (the default).
// Safe for concurrent use once GrantDataRoles has returned.
type Client struct {
	Admin Admin
	HTTP  *http.Client
	// Cred is the bootstrap admin's credential.
	Cred *azidentity.ClientSecretCredential
	// Data is the data principal that GrantDataRoles creates; until then its
	// fields are empty and the data plane is reached as the admin.
	Data DataPrincipal
	// Ingest and Query are the SDK clients of the data plane: the admin's
	// until GrantDataRoles, the data principal's after.
	Ingest *azingest.Client
	Query  *azquery.Client

	hc       *http.Client
	dataCred *azidentity.ClientSecretCredential
}

// DataPrincipal is the service principal through which the harness ingests
// and queries: Monitoring Metrics Publisher and Log Analytics Reader on the
// admin's subscription, assigned by the bootstrap admin.
type DataPrincipal struct {
	ObjectID     string
	ClientID     string
	ClientSecret string
}

// String keeps the secret out of test logs.
func (d DataPrincipal) String() string {
	return fmt.Sprintf("DataPrincipal{object=%s client=%s secret=REDACTED}", d.ObjectID, d.ClientID)
}

// Env returns the CUSTOS_CLIENT_ID and CUSTOS_CLIENT_SECRET settings that
// make the CLI act as the data principal.
func (d DataPrincipal) Env() []string {
	return []string{"CUSTOS_CLIENT_ID=" + d.ClientID, "CUSTOS_CLIENT_SECRET=" + d.ClientSecret}
}

// NewClient builds the Azure SDK clients for adm: azidentity against the
// server's token service, the ingestion client (audience monitor.azure.com)
// and the query client (endpoint <server>/v1). SDK retries are off, so each
// Upload is sent exactly once and its outcome is known.
func NewClient(adm Admin) (*Client, error) {
	pool, err := loadCA(adm.CAFile)
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     30 * time.Second,
	}}
	c := &Client{Admin: adm, HTTP: hc, hc: hc}
	if c.Cred, err = c.credential(adm.ClientID, adm.ClientSecret); err != nil {
		return nil, err
	}
	if err := c.dataClients(c.Cred); err != nil {
		return nil, err
	}
	return c, nil
}

// credential returns an azidentity client-secret credential against the
// server's token service.
func (c *Client) credential(clientID, secret string) (*azidentity.ClientSecretCredential, error) {
	cred, err := azidentity.NewClientSecretCredential(c.Admin.TenantID, clientID, secret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions: azcore.ClientOptions{
			Cloud:     cloud.Configuration{ActiveDirectoryAuthorityHost: c.Admin.Endpoint + "/"},
			Transport: c.hc,
		},
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		return nil, fmt.Errorf("azidentity credential: %w", err)
	}
	return cred, nil
}

// dataClients builds the ingestion client (audience monitor.azure.com) and
// the query client (endpoint <server>/v1) on cred.
func (c *Client) dataClients(cred *azidentity.ClientSecretCredential) error {
	opts := azcore.ClientOptions{
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: c.Admin.Endpoint + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				azingest.ServiceNameIngestion: {Audience: audienceIngestion},
				azquery.ServiceName:           {Audience: audienceQuery, Endpoint: c.Admin.Endpoint + "/v1"},
			},
		},
		Transport: c.hc,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}
	ing, err := azingest.NewClient(c.Admin.Endpoint, cred, &azingest.ClientOptions{ClientOptions: opts})
	if err != nil {
		return fmt.Errorf("ingestion client: %w", err)
	}
	qc, err := azquery.NewClient(cred, &azquery.ClientOptions{ClientOptions: opts})
	if err != nil {
		return fmt.Errorf("query client: %w", err)
	}
	c.Ingest, c.Query = ing, qc
	return nil
}

// Token returns a bearer token for audience (e.g. "https://api.loganalytics.io"):
// the admin's for the control plane, the data principal's (once
// GrantDataRoles has made it) for ingestion and query.
func (c *Client) Token(ctx context.Context, audience string) (string, error) {
	cred := c.Cred
	if c.dataCred != nil && audience != audienceManagement {
		cred = c.dataCred
	}
	tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{audience + "/.default"}})
	if err != nil {
		return "", fmt.Errorf("get token for %s: %w", audience, err)
	}
	return tok.Token, nil
}

// Do sends one request with a bearer token for audience and returns the
// status, the x-ms-error-code header and the body.
func (c *Client) Do(ctx context.Context, audience, method, path string, body []byte) (status int, code string, resp []byte, err error) {
	tok, err := c.Token(ctx, audience)
	if err != nil {
		return 0, "", nil, err
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Admin.Endpoint+path, rd)
	if err != nil {
		return 0, "", nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	r, err := c.HTTP.Do(req)
	if err != nil {
		return 0, "", nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer r.Body.Close()
	resp, err = io.ReadAll(io.LimitReader(r.Body, 256<<20))
	if err != nil {
		return r.StatusCode, "", nil, fmt.Errorf("read %s %s response: %w", method, path, err)
	}
	return r.StatusCode, r.Header.Get("x-ms-error-code"), resp, nil
}

// ARM sends one control-plane request (path includes ?api-version=) and
// fails unless the answer is 2xx.
func (c *Client) ARM(ctx context.Context, method, path string, body any) ([]byte, error) {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return nil, fmt.Errorf("encode ARM body: %w", err)
		}
	}
	status, _, resp, err := c.Do(ctx, audienceManagement, method, path, raw)
	if err != nil {
		return nil, err
	}
	if status/100 != 2 {
		return resp, fmt.Errorf("%s %s: HTTP %d: %s", method, path, status, bytes.TrimSpace(resp))
	}
	return resp, nil
}

// Column is a table or stream column: name and Azure type name
// ("string", "datetime", "int", "long", "real", "boolean", "dynamic").
type Column struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// CreateTable creates (or updates) a custom table in the admin's workspace.
func (c *Client) CreateTable(ctx context.Context, name string, cols []Column) error {
	body := map[string]any{"properties": map[string]any{"schema": map[string]any{"name": name, "columns": cols}}}
	_, err := c.ARM(ctx, http.MethodPut, c.Admin.WorkspaceResourceID()+"/tables/"+name+"?api-version=2022-10-01", body)
	return err
}

// CreateDCR creates a Direct data collection rule named name that sends
// stream (declared with cols) to table in the admin's workspace, through
// transformKQL ("" for none). It returns the rule's immutableId.
func (c *Client) CreateDCR(ctx context.Context, name, stream string, cols []Column, table, transformKQL string) (string, error) {
	flow := map[string]any{"streams": []string{stream}, "destinations": []string{"la"}, "outputStream": "Custom-" + table}
	if transformKQL != "" {
		flow["transformKql"] = transformKQL
	}
	body := map[string]any{
		"location": "local",
		"kind":     "Direct",
		"properties": map[string]any{
			"streamDeclarations": map[string]any{stream: map[string]any{"columns": cols}},
			"destinations": map[string]any{"logAnalytics": []map[string]any{
				{"name": "la", "workspaceResourceId": c.Admin.WorkspaceResourceID()},
			}},
			"dataFlows": []any{flow},
		},
	}
	path := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Insights/dataCollectionRules/%s?api-version=2023-03-11",
		c.Admin.SubscriptionID, c.Admin.ResourceGroup, name)
	raw, err := c.ARM(ctx, http.MethodPut, path, body)
	if err != nil {
		return "", err
	}
	var got struct {
		Properties struct {
			ImmutableID string `json:"immutableId"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &got); err != nil || got.Properties.ImmutableID == "" {
		return "", fmt.Errorf("DCR response has no immutableId (%v): %s", err, raw)
	}
	return got.Properties.ImmutableID, nil
}

// Upload sends one JSON array of records through the Azure SDK.
func (c *Client) Upload(ctx context.Context, ruleID, stream string, records []byte) error {
	_, err := c.Ingest.Upload(ctx, ruleID, stream, records, nil)
	return err
}

// QueryRows runs kql on the admin's workspace through the Azure SDK and
// returns the first table's column names and rows. A partial error fails.
func (c *Client) QueryRows(ctx context.Context, kql string) ([]string, [][]any, error) {
	res, err := c.Query.QueryWorkspace(ctx, c.Admin.WorkspaceID, azquery.QueryBody{Query: &kql}, nil)
	if err != nil {
		return nil, nil, err
	}
	if res.Error != nil {
		return nil, nil, fmt.Errorf("query %q: partial error: %v", kql, res.Error)
	}
	if len(res.Tables) == 0 {
		return nil, nil, fmt.Errorf("query %q returned no table", kql)
	}
	t := res.Tables[0]
	cols := make([]string, len(t.Columns))
	for i, col := range t.Columns {
		if col.Name != nil {
			cols[i] = *col.Name
		}
	}
	rows := make([][]any, len(t.Rows))
	for i, r := range t.Rows {
		rows[i] = r
	}
	return cols, rows, nil
}

// QueryRaw posts kql to /v1/workspaces/{id}/query and returns the status,
// the x-ms-error-code header and the raw body.
func (c *Client) QueryRaw(ctx context.Context, kql string) (int, string, []byte, error) {
	return c.QueryRawTimespan(ctx, kql, "")
}

// QueryRawTimespan is QueryRaw with the request body's timespan (an ISO 8601
// duration or interval; empty sends none).
func (c *Client) QueryRawTimespan(ctx context.Context, kql, timespan string) (int, string, []byte, error) {
	req := map[string]string{"query": kql}
	if timespan != "" {
		req["timespan"] = timespan
	}
	body, _ := json.Marshal(req)
	return c.Do(ctx, audienceQuery, http.MethodPost, "/v1/workspaces/"+c.Admin.WorkspaceID+"/query", body)
}

// IsStatus reports whether err is an Azure SDK response error with status.
func IsStatus(err error, status int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == status
}

// roleMonitoringMetricsPublisher is Azure's built-in role with the Logs
// Ingestion data action (Microsoft.Insights/Telemetry/Write).
const roleMonitoringMetricsPublisher = "3913510d-42f4-4e42-8a64-420c390055eb"

// RoleCacheTTL bounds how long the server's authorizer may keep using the
// role assignments it loaded for a principal (rbac.DefaultCacheTTL), plus a
// margin.
const RoleCacheTTL = 1500 * time.Millisecond

// ObjectID returns the admin's object ID: the oid claim of its token.
func (c *Client) ObjectID(ctx context.Context) (string, error) {
	tok, err := c.Token(ctx, audienceManagement)
	if err != nil {
		return "", err
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", errors.New("token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("decode token payload: %w", err)
	}
	var claims struct {
		OID string `json:"oid"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.OID == "" {
		return "", fmt.Errorf("token has no oid claim (%v)", err)
	}
	return claims.OID, nil
}

// NewGUID returns a random (version 4) GUID, as role assignment and
// directory object names need. crypto/rand.Read does not fail.
func NewGUID() string {
	var id [16]byte
	_, _ = rand.Read(id[:])
	id[6] = id[6]&0x0f | 0x40
	id[8] = id[8]&0x3f | 0x80
	h := hex.EncodeToString(id[:])
	return strings.Join([]string{h[:8], h[8:12], h[12:16], h[16:20], h[20:]}, "-")
}

// AssignRole grants the built-in or custom role roleID (a GUID, resolved in
// the admin's subscription) to principal at scope.
func (c *Client) AssignRole(ctx context.Context, scope, roleID, principal string) error {
	body := map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/subscriptions/" + c.Admin.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID,
		"principalId":      principal}}
	_, err := c.ARM(ctx, http.MethodPut, scope+"/providers/Microsoft.Authorization/roleAssignments/"+NewGUID()+"?api-version=2022-04-01", body)
	return err
}

// roleDataReader is "Log Analytics Reader", Azure's built-in role that runs queries
// (Microsoft.OperationalInsights/workspaces/query/*/read through */read).
const roleDataReader = "73c42c96-874c-492b-b04d-ab87d138a893"

// GrantDataRoles is the one place where tests get data access. The
// bootstrap admin holds Owner at "/", which (as in Azure) grants no data
// actions and, in just-in-time mode (the server's default), no query access
// either; nor may it grant itself a role that reads data. So, as an operator
// would, the admin creates a data principal (a service principal), assigns
// it "Monitoring Metrics Publisher" and "Log Analytics Reader" on its
// subscription through the ARM role-assignment API, and the client's
// ingestion and query calls (Ingest, Query, Do with those audiences) use it
// from then on. The admin itself gets "Monitoring Metrics Publisher" too
// (ingestion is not restricted by just-in-time mode), so CLI ingestion as
// the admin keeps working. It then waits RoleCacheTTL so that the server's
// authorizer sees the assignments. Calling it again is a no-op.
func (c *Client) GrantDataRoles(ctx context.Context) error {
	if c.dataCred != nil {
		return nil
	}
	oid, err := c.ObjectID(ctx)
	if err != nil {
		return err
	}
	sub := "/subscriptions/" + c.Admin.SubscriptionID
	if err := c.assignOnce(ctx, sub, roleMonitoringMetricsPublisher, oid); err != nil {
		return fmt.Errorf("grant the admin Monitoring Metrics Publisher: %w", err)
	}
	raw, err := c.ARM(ctx, http.MethodPost, "/providers/Custos.Directory/servicePrincipals?api-version=2024-01-01",
		map[string]string{"displayName": "e2e-data-" + NewGUID()[:8]})
	if err != nil {
		return fmt.Errorf("create the data principal: %w", err)
	}
	var sp struct {
		Name       string `json:"name"`
		Properties struct {
			AppID               string `json:"appId"`
			PasswordCredentials []struct {
				SecretText string `json:"secretText"`
			} `json:"passwordCredentials"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(raw, &sp); err != nil || sp.Name == "" || sp.Properties.AppID == "" ||
		len(sp.Properties.PasswordCredentials) == 0 || sp.Properties.PasswordCredentials[0].SecretText == "" {
		return fmt.Errorf("data principal answer lacks name, appId or secretText (%v)", err)
	}
	data := DataPrincipal{ObjectID: sp.Name, ClientID: sp.Properties.AppID, ClientSecret: sp.Properties.PasswordCredentials[0].SecretText}
	for _, role := range []string{roleMonitoringMetricsPublisher, roleDataReader} {
		if err := c.assignOnce(ctx, sub, role, data.ObjectID); err != nil {
			return fmt.Errorf("grant the data principal role %s: %w", role, err)
		}
	}
	cred, err := c.credential(data.ClientID, data.ClientSecret)
	if err != nil {
		return err
	}
	if err := c.dataClients(cred); err != nil {
		return err
	}
	c.Data, c.dataCred = data, cred
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(RoleCacheTTL):
	}
	return nil
}

// assignOnce assigns roleID to principal at scope as a service principal;
// an existing identical assignment (409 RoleAssignmentExists) counts as
// success.
func (c *Client) assignOnce(ctx context.Context, scope, roleID, principal string) error {
	body, _ := json.Marshal(map[string]any{"properties": map[string]any{
		"roleDefinitionId": "/subscriptions/" + c.Admin.SubscriptionID + "/providers/Microsoft.Authorization/roleDefinitions/" + roleID,
		"principalId":      principal,
		"principalType":    "ServicePrincipal",
	}})
	status, code, resp, err := c.Do(ctx, audienceManagement, http.MethodPut,
		scope+"/providers/Microsoft.Authorization/roleAssignments/"+NewGUID()+"?api-version=2022-04-01", body)
	if err != nil {
		return err
	}
	if status/100 != 2 && !(status == http.StatusConflict && code == "RoleAssignmentExists") {
		return fmt.Errorf("HTTP %d %s: %s", status, code, bytes.TrimSpace(resp))
	}
	return nil
}
