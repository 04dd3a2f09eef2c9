package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
)

// API versions the control-plane verbs send, as Azure's REST reference uses
// them for these resource types.
const (
	APIVersionWorkspaces = "2022-10-01" // Microsoft.OperationalInsights/workspaces
	APIVersionTables     = "2022-10-01" // Microsoft.OperationalInsights/workspaces/tables
	APIVersionDCR        = "2023-03-11" // Microsoft.Insights/dataCollectionRules
)

// maxListPages bounds how many nextLink pages a list follows.
const maxListPages = 1000

// maxResponseBytes bounds a control-plane response body.
const maxResponseBytes = 64 << 20

// ResourceGroupID returns the ARM ID of the configured resource group.
func (c *Client) ResourceGroupID() string {
	return "/subscriptions/" + url.PathEscape(c.cfg.SubscriptionID) + "/resourceGroups/" + url.PathEscape(c.cfg.ResourceGroup)
}

// WorkspaceResourceID returns the ARM ID of workspace name in the configured
// resource group.
func (c *Client) WorkspaceResourceID(name string) string {
	return c.ResourceGroupID() + "/providers/Microsoft.OperationalInsights/workspaces/" + url.PathEscape(name)
}

// DCRResourceID returns the ARM ID of data collection rule name in the
// configured resource group.
func (c *Client) DCRResourceID(name string) string {
	return c.ResourceGroupID() + "/providers/Microsoft.Insights/dataCollectionRules/" + url.PathEscape(name)
}

func (c *Client) needResourceGroup() error {
	return c.cfg.Validate(NeedResourceGroup, "pass --subscription and --resource-group, or set them in admin.json")
}

// do sends one control-plane request and returns the response body when the
// status is one of ok.
func (c *Client) do(ctx context.Context, method, path, apiVersion string, body []byte, ok ...int) ([]byte, int, error) {
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = c.endpoint + path
	}
	req, err := runtime.NewRequest(ctx, method, u)
	if err != nil {
		return nil, 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if apiVersion != "" {
		q := req.Raw().URL.Query()
		q.Set("api-version", apiVersion)
		req.Raw().URL.RawQuery = q.Encode()
	}
	req.Raw().Header.Set("Accept", "application/json")
	if body != nil {
		if err := req.SetBody(streaming.NopCloser(bytes.NewReader(body)), "application/json"); err != nil {
			return nil, 0, fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	resp, err := c.arm.Pipeline().Do(req)
	if err != nil {
		return nil, 0, Explain(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if len(data) > maxResponseBytes {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: response larger than %d bytes", method, path, maxResponseBytes)
	}
	for _, s := range ok {
		if resp.StatusCode == s {
			return data, resp.StatusCode, nil
		}
	}
	return nil, resp.StatusCode, ParseErrorResponse(resp.StatusCode, resp.Header, data)
}

// get returns the resource at path.
func (c *Client) get(ctx context.Context, path, apiVersion string) ([]byte, error) {
	data, _, err := c.do(ctx, http.MethodGet, path, apiVersion, nil, http.StatusOK)
	return data, err
}

// put creates or updates the resource at path and returns it. A 202 (Azure's
// long-running form) is followed by a GET of the resource.
func (c *Client) put(ctx context.Context, path, apiVersion string, body []byte) ([]byte, error) {
	data, status, err := c.do(ctx, http.MethodPut, path, apiVersion, body, http.StatusOK, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	if status == http.StatusAccepted || len(bytes.TrimSpace(data)) == 0 {
		return c.get(ctx, path, apiVersion)
	}
	return data, nil
}

// del deletes the resource at path.
func (c *Client) del(ctx context.Context, path, apiVersion string) error {
	_, _, err := c.do(ctx, http.MethodDelete, path, apiVersion, nil, http.StatusOK, http.StatusAccepted, http.StatusNoContent)
	return err
}

// list returns the items of a collection, following nextLink when it points
// at the same server (a token is never sent anywhere else).
func (c *Client) list(ctx context.Context, path, apiVersion string) ([]json.RawMessage, error) {
	var items []json.RawMessage
	next, version := path, apiVersion
	for page := 0; next != ""; page++ {
		if page == maxListPages {
			return nil, fmt.Errorf("list %s: more than %d pages", path, maxListPages)
		}
		data, err := c.get(ctx, next, version)
		if err != nil {
			return nil, err
		}
		var doc struct {
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"nextLink"`
		}
		if err := json.Unmarshal(data, &doc); err != nil {
			return nil, fmt.Errorf("list %s: decode response: %w", path, err)
		}
		items = append(items, doc.Value...)
		next, version = "", ""
		if doc.NextLink != "" {
			if !strings.HasPrefix(doc.NextLink, c.endpoint+"/") {
				return nil, fmt.Errorf("list %s: server sent a nextLink to another host (%s); not following it", path, SafeText(doc.NextLink, 200))
			}
			next = doc.NextLink // carries its own api-version
		}
	}
	return items, nil
}

// Workspace is a Log Analytics workspace as the control plane returns it.
type Workspace struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	Etag       string            `json:"etag,omitempty"`
	Properties struct {
		CustomerID                      string `json:"customerId"`
		ProvisioningState               string `json:"provisioningState"`
		RetentionInDays                 int    `json:"retentionInDays"`
		PublicNetworkAccessForIngestion string `json:"publicNetworkAccessForIngestion"`
		PublicNetworkAccessForQuery     string `json:"publicNetworkAccessForQuery"`
		Features                        struct {
			EnableLogAccessUsingOnlyResourcePermissions *bool `json:"enableLogAccessUsingOnlyResourcePermissions"`
		} `json:"features"`
	} `json:"properties"`
	Raw json.RawMessage `json:"-"` // the body as received, for -o json
}

// WorkspaceSpec is the body of `custos workspace create`.
type WorkspaceSpec struct {
	Location        string
	RetentionInDays int // 0: the server's default
	Tags            map[string]string
}

func decodeResource[T any](data []byte, raw func(*T) *json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return v, fmt.Errorf("decode response: %w", err)
	}
	*raw(&v) = data
	return v, nil
}

func workspaceRaw(w *Workspace) *json.RawMessage { return &w.Raw }
func tableRaw(t *TableResource) *json.RawMessage { return &t.Raw }
func dcrRaw(d *DCR) *json.RawMessage             { return &d.Raw }

func decodeList[T any](items []json.RawMessage, raw func(*T) *json.RawMessage) ([]T, error) {
	out := make([]T, 0, len(items))
	for _, it := range items {
		var v T
		if err := json.Unmarshal(it, &v); err != nil {
			return nil, fmt.Errorf("decode list item: %w", err)
		}
		*raw(&v) = it
		out = append(out, v)
	}
	return out, nil
}

// ListWorkspaces lists the workspaces of the configured resource group.
func (c *Client) ListWorkspaces(ctx context.Context) ([]Workspace, error) {
	if err := c.needResourceGroup(); err != nil {
		return nil, err
	}
	items, err := c.list(ctx, c.ResourceGroupID()+"/providers/Microsoft.OperationalInsights/workspaces", APIVersionWorkspaces)
	if err != nil {
		return nil, err
	}
	return decodeList(items, workspaceRaw)
}

// GetWorkspace returns workspace name of the configured resource group.
func (c *Client) GetWorkspace(ctx context.Context, name string) (Workspace, error) {
	if err := c.needResourceGroup(); err != nil {
		return Workspace{}, err
	}
	data, err := c.get(ctx, c.WorkspaceResourceID(name), APIVersionWorkspaces)
	if err != nil {
		return Workspace{}, err
	}
	return decodeResource(data, workspaceRaw)
}

// PutWorkspace creates or updates workspace name.
func (c *Client) PutWorkspace(ctx context.Context, name string, spec WorkspaceSpec) (Workspace, error) {
	if err := c.needResourceGroup(); err != nil {
		return Workspace{}, err
	}
	props := map[string]any{}
	if spec.RetentionInDays != 0 {
		props["retentionInDays"] = spec.RetentionInDays
	}
	body := map[string]any{"location": spec.Location, "properties": props}
	if len(spec.Tags) > 0 {
		body["tags"] = spec.Tags
	}
	b, err := json.Marshal(body)
	if err != nil {
		return Workspace{}, fmt.Errorf("encode workspace: %w", err)
	}
	data, err := c.put(ctx, c.WorkspaceResourceID(name), APIVersionWorkspaces, b)
	if err != nil {
		return Workspace{}, err
	}
	return decodeResource(data, workspaceRaw)
}

// DeleteWorkspace deletes workspace name.
func (c *Client) DeleteWorkspace(ctx context.Context, name string) error {
	if err := c.needResourceGroup(); err != nil {
		return err
	}
	return c.del(ctx, c.WorkspaceResourceID(name), APIVersionWorkspaces)
}

// guidPattern matches a GUID, which is how a workspace customer ID looks.
var guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// ResolveWorkspaceID returns the customer ID (GUID) of a workspace given by
// customer ID or by name. An empty nameOrID means the configured default:
// workspaceId, else workspaceName.
func (c *Client) ResolveWorkspaceID(ctx context.Context, nameOrID string) (string, error) {
	if nameOrID == "" {
		if c.cfg.WorkspaceID != "" {
			return c.cfg.WorkspaceID, nil
		}
		nameOrID = c.cfg.WorkspaceName
	}
	if nameOrID == "" {
		return "", fmt.Errorf("%w: no workspace; pass --workspace NAME|ID or set workspaceId in admin.json", ErrNoConfig)
	}
	if guidPattern.MatchString(nameOrID) {
		return nameOrID, nil
	}
	w, err := c.GetWorkspace(ctx, nameOrID)
	if err != nil {
		return "", fmt.Errorf("look up workspace %q: %w", nameOrID, err)
	}
	if w.Properties.CustomerID == "" {
		return "", fmt.Errorf("workspace %q has no customerId", nameOrID)
	}
	return w.Properties.CustomerID, nil
}

// workspaceName returns name or, when empty, the configured default workspace.
func (c *Client) workspaceName(name string) (string, error) {
	if name != "" {
		return name, nil
	}
	if c.cfg.WorkspaceName == "" {
		return "", fmt.Errorf("%w: no workspace; pass --workspace NAME or set workspaceName in admin.json", ErrNoConfig)
	}
	return c.cfg.WorkspaceName, nil
}

// TableResource is a workspace table as the control plane returns it.
type TableResource struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		RetentionInDays      int    `json:"retentionInDays"`
		TotalRetentionInDays int    `json:"totalRetentionInDays"`
		Plan                 string `json:"plan"`
		ProvisioningState    string `json:"provisioningState"`
		Schema               struct {
			Name            string   `json:"name"`
			TableType       string   `json:"tableType"`
			Description     string   `json:"description"`
			Columns         []Column `json:"columns"`
			StandardColumns []Column `json:"standardColumns"`
		} `json:"schema"`
	} `json:"properties"`
	Raw json.RawMessage `json:"-"`
}

func (c *Client) tablePath(workspace, table string) string {
	p := c.WorkspaceResourceID(workspace) + "/tables"
	if table != "" {
		p += "/" + url.PathEscape(table)
	}
	return p
}

// ListTables lists the tables of a workspace (the default when empty).
func (c *Client) ListTables(ctx context.Context, workspace string) ([]TableResource, error) {
	if err := c.needResourceGroup(); err != nil {
		return nil, err
	}
	ws, err := c.workspaceName(workspace)
	if err != nil {
		return nil, err
	}
	items, err := c.list(ctx, c.tablePath(ws, ""), APIVersionTables)
	if err != nil {
		return nil, err
	}
	return decodeList(items, tableRaw)
}

// GetTable returns one table of a workspace (the default when empty).
func (c *Client) GetTable(ctx context.Context, workspace, table string) (TableResource, error) {
	if err := c.needResourceGroup(); err != nil {
		return TableResource{}, err
	}
	ws, err := c.workspaceName(workspace)
	if err != nil {
		return TableResource{}, err
	}
	data, err := c.get(ctx, c.tablePath(ws, table), APIVersionTables)
	if err != nil {
		return TableResource{}, err
	}
	return decodeResource(data, tableRaw)
}

// PutTable creates or updates a table of a workspace (the default when empty).
func (c *Client) PutTable(ctx context.Context, workspace, table string, spec TableSpec) (TableResource, error) {
	if err := c.needResourceGroup(); err != nil {
		return TableResource{}, err
	}
	ws, err := c.workspaceName(workspace)
	if err != nil {
		return TableResource{}, err
	}
	if len(spec.Columns) == 0 {
		return TableResource{}, errors.New("a table needs at least one column")
	}
	props := map[string]any{"schema": map[string]any{"name": table, "columns": spec.Columns}}
	if spec.RetentionInDays != nil {
		props["retentionInDays"] = *spec.RetentionInDays
	}
	if spec.TotalRetentionInDays != nil {
		props["totalRetentionInDays"] = *spec.TotalRetentionInDays
	}
	if spec.Plan != "" {
		props["plan"] = spec.Plan
	}
	b, err := json.Marshal(map[string]any{"properties": props})
	if err != nil {
		return TableResource{}, fmt.Errorf("encode table: %w", err)
	}
	data, err := c.put(ctx, c.tablePath(ws, table), APIVersionTables, b)
	if err != nil {
		return TableResource{}, err
	}
	return decodeResource(data, tableRaw)
}

// DeleteTable deletes a table of a workspace (the default when empty).
func (c *Client) DeleteTable(ctx context.Context, workspace, table string) error {
	if err := c.needResourceGroup(); err != nil {
		return err
	}
	ws, err := c.workspaceName(workspace)
	if err != nil {
		return err
	}
	return c.del(ctx, c.tablePath(ws, table), APIVersionTables)
}

// DCR is a data collection rule as the control plane returns it.
type DCR struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Location   string `json:"location"`
	Kind       string `json:"kind"`
	Properties struct {
		Description       string `json:"description"`
		ImmutableID       string `json:"immutableId"`
		ProvisioningState string `json:"provisioningState"`
		Endpoints         struct {
			LogsIngestion string `json:"logsIngestion"`
		} `json:"endpoints"`
		StreamDeclarations map[string]struct {
			Columns []Column `json:"columns"`
		} `json:"streamDeclarations"`
		Destinations struct {
			LogAnalytics []struct {
				Name                string `json:"name"`
				WorkspaceResourceID string `json:"workspaceResourceId"`
				WorkspaceID         string `json:"workspaceId"`
			} `json:"logAnalytics"`
		} `json:"destinations"`
		DataFlows []struct {
			Streams      []string `json:"streams"`
			Destinations []string `json:"destinations"`
			TransformKQL string   `json:"transformKql"`
			OutputStream string   `json:"outputStream"`
		} `json:"dataFlows"`
	} `json:"properties"`
	Raw json.RawMessage `json:"-"`
}

// ListDCRs lists the data collection rules of the configured resource group.
func (c *Client) ListDCRs(ctx context.Context) ([]DCR, error) {
	if err := c.needResourceGroup(); err != nil {
		return nil, err
	}
	items, err := c.list(ctx, c.ResourceGroupID()+"/providers/Microsoft.Insights/dataCollectionRules", APIVersionDCR)
	if err != nil {
		return nil, err
	}
	return decodeList(items, dcrRaw)
}

// GetDCR returns data collection rule name.
func (c *Client) GetDCR(ctx context.Context, name string) (DCR, error) {
	if err := c.needResourceGroup(); err != nil {
		return DCR{}, err
	}
	data, err := c.get(ctx, c.DCRResourceID(name), APIVersionDCR)
	if err != nil {
		return DCR{}, err
	}
	return decodeResource(data, dcrRaw)
}

// PutDCR creates or updates data collection rule name from an ARM body (the
// JSON of `custos dcr create -f`). A body without "location" gets location.
func (c *Client) PutDCR(ctx context.Context, name string, body []byte, location string) (DCR, error) {
	if err := c.needResourceGroup(); err != nil {
		return DCR{}, err
	}
	body, err := withLocation(body, location)
	if err != nil {
		return DCR{}, err
	}
	data, err := c.put(ctx, c.DCRResourceID(name), APIVersionDCR, body)
	if err != nil {
		return DCR{}, err
	}
	return decodeResource(data, dcrRaw)
}

// withLocation checks that body is one JSON object and adds "location" when
// it has none.
func withLocation(body []byte, location string) ([]byte, error) {
	body = bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	var doc map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("rule file: want a JSON object: %w", err)
	}
	if dec.More() {
		return nil, errors.New("rule file: data after the JSON object")
	}
	if doc == nil {
		return nil, errors.New("rule file: want a JSON object, got null")
	}
	if _, ok := doc["location"]; ok || location == "" {
		return body, nil
	}
	loc, _ := json.Marshal(location)
	doc["location"] = loc
	return json.Marshal(doc)
}

// DeleteDCR deletes data collection rule name.
func (c *Client) DeleteDCR(ctx context.Context, name string) error {
	if err := c.needResourceGroup(); err != nil {
		return err
	}
	return c.del(ctx, c.DCRResourceID(name), APIVersionDCR)
}

// immutableIDPattern matches a DCR immutable ID: "dcr-" and 32 hex digits.
var immutableIDPattern = regexp.MustCompile(`^dcr-[0-9a-fA-F]{32}$`)

// IsImmutableID reports whether s looks like a DCR immutable ID.
func IsImmutableID(s string) bool { return immutableIDPattern.MatchString(s) }

// ResolveDCR returns the immutable ID and the declared stream names of a DCR
// given by name or immutable ID. An immutable ID is matched against the rules
// of the configured resource group so that its streams are known; if the
// rule is not there (or listing is not allowed), the ID is returned with no
// streams and the server decides.
func (c *Client) ResolveDCR(ctx context.Context, nameOrID string) (string, []string, error) {
	if IsImmutableID(nameOrID) {
		if c.needResourceGroup() != nil {
			return nameOrID, nil, nil
		}
		rules, err := c.ListDCRs(ctx)
		if err != nil {
			return nameOrID, nil, nil // the upload itself reports real errors
		}
		for _, d := range rules {
			if strings.EqualFold(d.Properties.ImmutableID, nameOrID) {
				return nameOrID, streamNames(d), nil
			}
		}
		return nameOrID, nil, nil
	}
	d, err := c.GetDCR(ctx, nameOrID)
	if err != nil {
		return "", nil, fmt.Errorf("look up data collection rule %q: %w", nameOrID, err)
	}
	if d.Properties.ImmutableID == "" {
		return "", nil, fmt.Errorf("data collection rule %q has no immutableId", nameOrID)
	}
	return d.Properties.ImmutableID, streamNames(d), nil
}

func streamNames(d DCR) []string {
	names := make([]string, 0, len(d.Properties.StreamDeclarations))
	for n := range d.Properties.StreamDeclarations {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// APIVersionResourceGroups is the api-version for resource group reads.
const APIVersionResourceGroups = "2021-04-01"

// ResourceGroupLocation returns the location of the configured resource
// group, which create verbs use when no --location is given (as the Azure CLI
// does).
func (c *Client) ResourceGroupLocation(ctx context.Context) (string, error) {
	if err := c.needResourceGroup(); err != nil {
		return "", err
	}
	data, err := c.get(ctx, c.ResourceGroupID(), APIVersionResourceGroups)
	if err != nil {
		return "", fmt.Errorf("look up the resource group's location: %w", err)
	}
	var rg struct {
		Location string `json:"location"`
	}
	if err := json.Unmarshal(data, &rg); err != nil {
		return "", fmt.Errorf("look up the resource group's location: decode: %w", err)
	}
	if rg.Location == "" {
		return "", errors.New("the resource group has no location; pass --location")
	}
	return rg.Location, nil
}
