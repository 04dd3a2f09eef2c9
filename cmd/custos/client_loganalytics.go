package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

// The Log Analytics verbs that speak ARM: `custos la-cluster` (dedicated
// clusters with customer-managed keys, and linking workspaces to them),
// `custos diagnostic-setting` (query audit to LAQueryLogs) and `custos
// purge`. They use the API versions of Azure's REST reference.
const (
	apiVersionLACluster      = "2022-10-01"         // Microsoft.OperationalInsights/clusters
	apiVersionLinkedServices = "2020-08-01"         // Microsoft.OperationalInsights/workspaces/linkedServices
	apiVersionDiagnostic     = "2021-05-01-preview" // Microsoft.Insights/diagnosticSettings
	apiVersionPurge          = "2020-08-01"         // Microsoft.OperationalInsights/workspaces/purge

	// envClusterKeySecret holds the credential of a cluster's key store
	// (client secret, Transit token, PKCS#11 PIN), so it appears in no
	// process list.
	envClusterKeySecret = "CUSTOS_CLUSTER_KEY_SECRET"
)

// addLogAnalyticsCommands registers la-cluster, diagnostic-setting and purge.
func addLogAnalyticsCommands(root *cobra.Command) {
	root.AddCommand(newLAClusterCmd(), newDiagnosticSettingCmd(), newPurgeCmd())
}

// workspaceResourceID returns the resource ID of a workspace of the
// resource group (workspace "" means admin.json's), or workspace itself when
// it is already an ID.
func workspaceResourceID(m *mgmtClient, workspace string) (string, error) {
	if strings.HasPrefix(workspace, "/") {
		return workspace, nil
	}
	return workspaceChild(m, workspace, "", "")
}

func newLAClusterCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "la-cluster",
		Aliases: []string{"log-analytics-cluster", "dedicated-cluster"},
		Short:   "Create, list, show and delete Log Analytics clusters (customer-managed keys) and link workspaces to them",
		Long: `Manage Log Analytics dedicated clusters (Microsoft.OperationalInsights/clusters): the customer-managed
key of the workspaces linked to them, and double encryption. Linking re-wraps the workspace key under the
cluster's key; no data is rewritten. See docs/encryption.md for the key providers. (Kubernetes clusters
enrolled by custos-agent are 'custos cluster'.)`,
	}
	f.register(cmd)
	res := armResource{
		what: "Log Analytics cluster", apiVersion: apiVersionLACluster, path: rgChild("Microsoft.OperationalInsights/clusters"),
		confirmDelete: true,
		columns:       []string{"NAME", "KEY PROVIDER", "KEY", "DOUBLE ENCRYPTION", "WORKSPACES"},
		row: func(item json.RawMessage) ([]string, error) {
			var x struct {
				Name       string `json:"name"`
				Properties struct {
					IsDoubleEncryptionEnabled bool `json:"isDoubleEncryptionEnabled"`
					KeyVaultProperties        *struct {
						KeyVaultURI    string `json:"keyVaultUri"`
						KeyName        string `json:"keyName"`
						KeyVersion     string `json:"keyVersion"`
						CustosProvider string `json:"custosProvider"`
					} `json:"keyVaultProperties"`
					AssociatedWorkspaces []struct {
						WorkspaceName string `json:"workspaceName"`
					} `json:"associatedWorkspaces"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(item, &x); err != nil {
				return nil, err
			}
			provider, key := "", "(none)"
			if kv := x.Properties.KeyVaultProperties; kv != nil && (kv.KeyVaultURI != "" || kv.KeyName != "") {
				provider, key = kv.CustosProvider, kv.KeyVaultURI+" "+kv.KeyName
				if kv.KeyVersion != "" {
					key += "/" + kv.KeyVersion
				}
			}
			ws := make([]string, 0, len(x.Properties.AssociatedWorkspaces))
			for _, w := range x.Properties.AssociatedWorkspaces {
				ws = append(ws, w.WorkspaceName)
			}
			return []string{x.Name, provider, key, fmt.Sprint(x.Properties.IsDoubleEncryptionEnabled), strings.Join(ws, ", ")}, nil
		},
	}

	var location, keyURI, keyName, keyVersion, provider, file string
	var capacity int
	var double bool
	create := &cobra.Command{
		Use:   "create NAME [--key-vault-uri URI --key-name NAME [--key-version V] [--key-provider P]] [--double-encryption]",
		Short: "Create or update a Log Analytics cluster",
		Long: `Create or update a Log Analytics cluster. The key store's credential (client secret, Transit token or
PKCS#11 PIN) is read from ` + envClusterKeySecret + ` (never from a flag); the server seals it and never
returns it. Provider-specific settings (custosTransit, custosAzure, custosPkcs11) need the full ARM body:
pass it with -f (flags then override its members).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{}
			if file != "" {
				b, err := readAlertBody(cmd, file)
				if err != nil {
					return err
				}
				if err := json.Unmarshal(b, &body); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
			props, _ := body["properties"].(map[string]any)
			if props == nil {
				props = map[string]any{}
			}
			if _, ok := body["location"]; !ok || cmd.Flags().Changed("location") {
				body["location"] = location
			}
			if _, ok := body["sku"]; !ok || cmd.Flags().Changed("capacity") {
				body["sku"] = map[string]any{"name": "CapacityReservation", "capacity": capacity}
			}
			if _, ok := body["identity"]; !ok {
				body["identity"] = map[string]any{"type": "SystemAssigned"}
			}
			if cmd.Flags().Changed("double-encryption") {
				props["isDoubleEncryptionEnabled"] = double
			}
			if keyURI != "" || keyName != "" {
				kv, _ := props["keyVaultProperties"].(map[string]any)
				if kv == nil {
					kv = map[string]any{}
				}
				kv["keyVaultUri"], kv["keyName"], kv["keyVersion"] = keyURI, keyName, keyVersion
				if provider != "" {
					kv["custosProvider"] = provider
				}
				props["keyVaultProperties"] = kv
			}
			if secret, ok := os.LookupEnv(envClusterKeySecret); ok {
				kv, _ := props["keyVaultProperties"].(map[string]any)
				if kv == nil {
					return fmt.Errorf("%s is set but no key is given (--key-vault-uri, --key-name)", envClusterKeySecret)
				}
				kv["custosSecret"] = secret
			}
			body["properties"] = props
			return armCall(cmd, f, http.MethodPut, res.item(args[0]), apiVersionLACluster, body)
		},
	}
	create.Flags().StringVar(&location, "location", "local", "location")
	create.Flags().IntVar(&capacity, "capacity", 100, "sku.capacity (GB/day commitment tier, as in Azure)")
	create.Flags().BoolVar(&double, "double-encryption", false, "encrypt in two layers (set at creation; cannot be changed)")
	create.Flags().StringVar(&keyURI, "key-vault-uri", "", "key store: https://{vault}.vault.azure.net, a Transit address, or file://{keys.fileKeyDir}")
	create.Flags().StringVar(&keyName, "key-name", "", "key name (Transit key, key file or PKCS#11 label)")
	create.Flags().StringVar(&keyVersion, "key-version", "", "key version (empty: the current one; a new version re-wraps linked workspaces)")
	create.Flags().StringVar(&provider, "key-provider", "", "azureKeyVault, transit, file or pkcs11 (default: from the URI)")
	create.Flags().StringVarP(&file, "file", "f", "", "ARM JSON body of the cluster (\"-\" reads stdin)")

	var workspace string
	linkPath := func(m *mgmtClient) (string, error) {
		ws, err := workspaceResourceID(m, workspace)
		return ws + "/linkedServices/cluster", err
	}
	link := &cobra.Command{
		Use:   "link NAME [--workspace WS]",
		Short: "Link a workspace to a cluster: its data key is re-wrapped under the cluster's key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return armCallBuilt(cmd, f, http.MethodPut, apiVersionLinkedServices, func(m *mgmtClient) (string, any, error) {
				clusterID, err := res.path(m, args[0])
				if err != nil {
					return "", nil, err
				}
				p, err := linkPath(m)
				return p, map[string]any{"properties": map[string]any{"writeAccessResourceId": clusterID}}, err
			})
		},
	}
	var yes bool
	unlink := &cobra.Command{
		Use:   "unlink [--workspace WS]",
		Short: "Unlink a workspace from its cluster (its key goes back under the platform key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ws := workspace
			if ws == "" {
				ws = "the configured workspace"
			}
			if err := confirm(cmd, yes, "unlinking "+ws+" from its cluster"); err != nil {
				return err
			}
			return armCall(cmd, f, http.MethodDelete, linkPath, apiVersionLinkedServices, nil)
		},
	}
	unlink.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	for _, c := range []*cobra.Command{link, unlink} {
		c.Flags().StringVar(&workspace, "workspace", "", "workspace name or resource ID (default: admin.json's workspaceName)")
	}
	cmd.AddCommand(create, link, unlink)
	cmd.AddCommand(res.commands(f)...)
	return cmd
}

func newDiagnosticSettingCmd() *cobra.Command {
	f := &clientFlags{}
	var workspace string
	cmd := &cobra.Command{
		Use:     "diagnostic-setting",
		Aliases: []string{"diagnostic-settings", "diag"},
		Short:   "Create, list, show and delete a workspace's diagnostic settings (query audit to LAQueryLogs)",
		Long: `Manage the diagnostic settings of a workspace (Microsoft.Insights/diagnosticSettings): with category
Audit, every query of the workspace — allowed or refused — adds a row to LAQueryLogs in the destination
workspace. See docs/security.md.`,
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&workspace, "workspace", "", "the source workspace (default: admin.json's workspaceName)")
	path := func(m *mgmtClient, name string) (string, error) {
		return workspaceChild(m, workspace, "providers/Microsoft.Insights/diagnosticSettings", name)
	}
	res := armResource{
		what: "diagnostic setting", apiVersion: apiVersionDiagnostic, path: path, confirmDelete: true,
		columns: []string{"NAME", "CATEGORIES", "DESTINATION"},
		row: func(item json.RawMessage) ([]string, error) {
			var x struct {
				Name       string `json:"name"`
				Properties struct {
					WorkspaceID string `json:"workspaceId"`
					Logs        []struct {
						Category      *string `json:"category"`
						CategoryGroup *string `json:"categoryGroup"`
						Enabled       bool    `json:"enabled"`
					} `json:"logs"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(item, &x); err != nil {
				return nil, err
			}
			var cats []string
			for _, l := range x.Properties.Logs {
				if !l.Enabled {
					continue
				}
				switch {
				case l.Category != nil:
					cats = append(cats, *l.Category)
				case l.CategoryGroup != nil:
					cats = append(cats, "group:"+*l.CategoryGroup)
				}
			}
			return []string{x.Name, strings.Join(cats, ", "), x.Properties.WorkspaceID}, nil
		},
	}
	var dest string
	var categories, groups []string
	create := &cobra.Command{
		Use:   "create NAME [--destination-workspace WS] [--category Audit | --category-group audit|allLogs]",
		Short: "Create or update a diagnostic setting that sends the workspace's query audit to a workspace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var logs []map[string]any
			for _, c := range categories {
				logs = append(logs, map[string]any{"category": c, "enabled": true})
			}
			for _, g := range groups {
				logs = append(logs, map[string]any{"categoryGroup": g, "enabled": true})
			}
			if len(logs) == 0 {
				logs = append(logs, map[string]any{"category": "Audit", "enabled": true})
			}
			return armCallBuilt(cmd, f, http.MethodPut, apiVersionDiagnostic, func(m *mgmtClient) (string, any, error) {
				p, err := path(m, args[0])
				if err != nil {
					return "", nil, err
				}
				d := dest
				if d == "" {
					d = workspace
				}
				destID, err := workspaceResourceID(m, d)
				return p, map[string]any{"properties": map[string]any{"workspaceId": destID, "logs": logs}}, err
			})
		},
	}
	create.Flags().StringVar(&dest, "destination-workspace", "", "destination workspace name or resource ID (default: the source workspace)")
	create.Flags().StringArrayVar(&categories, "category", nil, "log category to send (Audit; repeatable; default Audit)")
	create.Flags().StringArrayVar(&groups, "category-group", nil, "category group to send (audit or allLogs; repeatable)")
	cmd.AddCommand(create)
	cmd.AddCommand(res.commands(f)...)
	return cmd
}

// purgeFilter is one filter of a purge body (internal/purge.Filter's wire
// form).
type purgeFilter struct {
	Column   string          `json:"column"`
	Key      string          `json:"key,omitempty"`
	Operator string          `json:"operator"`
	Value    json.RawMessage `json:"value"`
}

// parsePurgeFilter reads one --filter: "COLUMN OPERATOR VALUE", where
// COLUMN may be "Column.key" for a property of a dynamic column and VALUE
// is JSON (a number, "a string", [an, array], true) or else taken as a
// string as typed: 'Email == alice@contoso.com', 'TimeGenerated <
// 2024-06-01', 'Computer in ["web-1","web-2"]'. The server checks columns,
// operators and values against the table.
func parsePurgeFilter(s string) (purgeFilter, error) {
	s = strings.TrimSpace(s)
	col, rest, ok := strings.Cut(s, " ")
	if !ok || col == "" {
		return purgeFilter{}, fmt.Errorf("filter %q: want COLUMN OPERATOR VALUE", s)
	}
	rest = strings.TrimSpace(rest)
	op, value, ok := strings.Cut(rest, " ")
	value = strings.TrimSpace(value)
	if !ok || op == "" || value == "" {
		return purgeFilter{}, fmt.Errorf("filter %q: want COLUMN OPERATOR VALUE", s)
	}
	f := purgeFilter{Column: col, Operator: op}
	if c, k, ok := strings.Cut(col, "."); ok {
		if c == "" || k == "" {
			return purgeFilter{}, fmt.Errorf("filter %q: want COLUMN or COLUMN.key", s)
		}
		f.Column, f.Key = c, k
	}
	if json.Valid([]byte(value)) {
		f.Value = json.RawMessage(value)
	} else {
		b, err := json.Marshal(value)
		if err != nil {
			return purgeFilter{}, err
		}
		f.Value = b
	}
	return f, nil
}

func newPurgeCmd() *cobra.Command {
	f := &clientFlags{}
	var workspace, table string
	var filters []string
	cmd := &cobra.Command{
		Use:   "purge --table T --filter 'COLUMN OPERATOR VALUE' [--filter ...] [--workspace WS]",
		Short: "Purge the rows of a table that match every filter; prints the operation ID",
		Long: `Purge rows (POST .../workspaces/{ws}/purge, as Azure's purge API): the rows of --table that match
every --filter are removed from the files that hold them, WAL and merges included. Filters are
"COLUMN OPERATOR VALUE" with Azure's operators (==, =~, in, in~, <, <=, >, >=, between); VALUE is JSON
(a number, "string", [array]) or a string as typed; COLUMN.key selects a property of a dynamic column.
The caller needs the Data Purger role. Follow the operation with 'custos purge status ID'. See
docs/sensitive-data.md.`,
		Example: `  custos purge --table SigninLogs --filter 'UserPrincipalName == alice@contoso.com'
  custos purge --table Orders_CL --filter 'TimeGenerated < 2024-06-01' --filter 'Customer in ["c1","c2"]'
  custos purge status 0b9c…  --wait`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if table == "" || len(filters) == 0 {
				return fmt.Errorf("pass --table and at least one --filter")
			}
			body := struct {
				Table   string        `json:"table"`
				Filters []purgeFilter `json:"filters"`
			}{Table: table}
			for _, s := range filters {
				pf, err := parsePurgeFilter(s)
				if err != nil {
					return err
				}
				body.Filters = append(body.Filters, pf)
			}
			data, _, err := armDo(cmd, f, http.MethodPost, func(m *mgmtClient) (string, error) {
				return workspaceChild(m, workspace, "purge", "")
			}, apiVersionPurge, body)
			if err != nil {
				return err
			}
			if f.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), data)
			}
			var out struct {
				OperationID string `json:"operationId"`
			}
			if err := json.Unmarshal(data, &out); err != nil || out.OperationID == "" {
				return fmt.Errorf("decode purge answer: no operationId in %q", data)
			}
			fmt.Fprintln(cmd.OutOrStdout(), out.OperationID)
			fmt.Fprintf(cmd.ErrOrStderr(), "purge of %s queued; follow it with: custos purge status %s\n", table, out.OperationID)
			return nil
		},
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&workspace, "workspace", "", "workspace name (default: admin.json's workspaceName)")
	cmd.Flags().StringVar(&table, "table", "", "the table to purge")
	cmd.Flags().StringArrayVar(&filters, "filter", nil, "COLUMN OPERATOR VALUE (repeat: all must hold)")

	var wait bool
	var timeout time.Duration
	status := &cobra.Command{
		Use:   "status OPERATION_ID [--wait]",
		Short: "Show a purge operation's status (pending, completed or failed)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := strings.TrimPrefix(args[0], "purge-")
			deadline := time.Now().Add(timeout)
			for {
				data, _, err := armDo(cmd, f, http.MethodGet, func(m *mgmtClient) (string, error) {
					return workspaceChild(m, workspace, "operations", "purge-"+id)
				}, apiVersionPurge, nil)
				if err != nil {
					return err
				}
				var st struct {
					Status string `json:"status"`
					Error  string `json:"error"`
				}
				if err := json.Unmarshal(data, &st); err != nil {
					return fmt.Errorf("decode purge status: %w", err)
				}
				if wait && st.Status == "pending" {
					if time.Now().After(deadline) {
						return fmt.Errorf("purge %s still pending after %v", id, timeout)
					}
					select {
					case <-cmd.Context().Done():
						return cmd.Context().Err()
					case <-time.After(time.Second):
					}
					continue
				}
				if f.json() {
					return writeIndentedJSON(cmd.OutOrStdout(), data)
				}
				if st.Error != "" {
					return cli.WriteFields(cmd.OutOrStdout(), [][2]string{{"Status", st.Status}, {"Error", st.Error}})
				}
				fmt.Fprintln(cmd.OutOrStdout(), st.Status)
				return nil
			}
		},
	}
	status.Flags().BoolVar(&wait, "wait", false, "poll until the purge is no longer pending")
	status.Flags().DurationVar(&timeout, "wait-timeout", 10*time.Minute, "give up waiting after this long")
	cmd.AddCommand(status)
	return cmd
}
