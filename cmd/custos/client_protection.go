package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

// The data protection verbs: `custos export` (data export rules), `custos
// pls` (private link scopes and their scoped resources) and `custos
// saved-search`. They speak the ARM APIs with the API versions Azure's REST
// reference uses for these types.
const (
	apiVersionDataExports   = "2020-08-01"         // Microsoft.OperationalInsights/workspaces/dataExports
	apiVersionSavedSearches = "2020-08-01"         // Microsoft.OperationalInsights/workspaces/savedSearches
	apiVersionPLS           = "2021-07-01-preview" // Microsoft.Insights/privateLinkScopes

	// envS3Secret holds the secret access key of an S3 export destination,
	// so it appears in no process list.
	envS3Secret = "CUSTOS_S3_SECRET_ACCESS_KEY"
)

// addProtectionCommands registers export, pls and saved-search.
func addProtectionCommands(root *cobra.Command) {
	root.AddCommand(newExportCmd(), newPLSCmd(), newSavedSearchCmd())
}

// workspaceChild returns the path of a workspace's child collection or item
// (the workspace itself for typ "");
// workspace "" means the configured default workspace.
func workspaceChild(m *mgmtClient, workspace, typ, name string) (string, error) {
	rg, err := m.rgID()
	if err != nil {
		return "", err
	}
	if workspace == "" {
		workspace = m.cfg.WorkspaceName
	}
	if workspace == "" {
		return "", fmt.Errorf("%w: no workspace; pass --workspace NAME or set workspaceName in admin.json", cli.ErrNoConfig)
	}
	p := rg + "/providers/Microsoft.OperationalInsights/workspaces/" + url.PathEscape(workspace)
	if typ != "" {
		p += "/" + typ
	}
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p, nil
}

func newExportCmd() *cobra.Command {
	f := &clientFlags{}
	var workspace string
	cmd := &cobra.Command{
		Use:     "export",
		Aliases: []string{"data-export"},
		Short:   "Create, list, show and delete data export rules of a workspace",
		Long: `Manage data export rules (Microsoft.OperationalInsights/workspaces/dataExports): continuous export
of chosen tables, as they are ingested, to a directory (file:///dir, under a directory the server allows
with export.allowedDirectories) or an S3-compatible bucket (s3://bucket/prefix), as JSON lines or Parquet,
under a signed manifest chain that ` + "`custos admin verify-export`" + ` checks. See docs/export.md.`,
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&workspace, "workspace", "", "workspace name (default: admin.json's workspaceName)")
	path := func(m *mgmtClient, name string) (string, error) {
		return workspaceChild(m, workspace, "dataExports", name)
	}

	var tables []string
	var dest, format, s3Endpoint, s3Region, s3Key string
	var disabled bool
	create := &cobra.Command{
		Use:   "create NAME --table T [--table T2] --destination file:///dir|s3://bucket/prefix",
		Short: "Create or update a data export rule",
		Long: `Create or update a data export rule. For an S3 destination give --s3-endpoint and
--s3-access-key-id; the secret access key is read from ` + envS3Secret + ` (never from a flag) and is
stored sealed by the server, which never returns it.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(tables) == 0 || dest == "" {
				return fmt.Errorf("pass at least one --table and a --destination")
			}
			d := map[string]any{"resourceId": dest}
			if strings.HasPrefix(dest, "s3://") {
				if s3Endpoint == "" || s3Key == "" {
					return fmt.Errorf("an s3:// destination needs --s3-endpoint and --s3-access-key-id")
				}
				s3 := map[string]any{"endpoint": s3Endpoint, "accessKeyId": s3Key}
				if s3Region != "" {
					s3["region"] = s3Region
				}
				if secret, ok := os.LookupEnv(envS3Secret); ok {
					s3["secretAccessKey"] = secret
				}
				d["custosS3"] = s3
			}
			props := map[string]any{"tableNames": tables, "destination": d, "enable": !disabled}
			if format != "" {
				props["custosFormat"] = format
			}
			return armCall(cmd, f, http.MethodPut, func(m *mgmtClient) (string, error) { return path(m, args[0]) }, apiVersionDataExports,
				map[string]any{"properties": props})
		},
	}
	create.Flags().StringArrayVar(&tables, "table", nil, "table to export (repeat for several)")
	create.Flags().StringVar(&dest, "destination", "", "file:///directory or s3://bucket/prefix")
	create.Flags().StringVar(&format, "format", "", "json (JSON lines, as Azure exports; the default) or parquet")
	create.Flags().BoolVar(&disabled, "disabled", false, "create the rule disabled")
	create.Flags().StringVar(&s3Endpoint, "s3-endpoint", "", "S3 endpoint URL (https://...)")
	create.Flags().StringVar(&s3Region, "s3-region", "", "S3 region (default us-east-1)")
	create.Flags().StringVar(&s3Key, "s3-access-key-id", "", "S3 access key ID (the secret comes from "+envS3Secret+")")

	cmd.AddCommand(create)
	cmd.AddCommand(armResource{what: "data export rule", apiVersion: apiVersionDataExports, path: path, confirmDelete: true,
		columns: []string{"NAME", "TABLES", "DESTINATION", "FORMAT", "ENABLED"}, row: func(item json.RawMessage) ([]string, error) {
			var x struct {
				Name       string `json:"name"`
				Properties struct {
					TableNames  []string `json:"tableNames"`
					Destination struct {
						ResourceID string `json:"resourceId"`
					} `json:"destination"`
					Enable       bool   `json:"enable"`
					CustosFormat string `json:"custosFormat"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(item, &x); err != nil {
				return nil, err
			}
			p := x.Properties
			return []string{x.Name, strings.Join(p.TableNames, ", "), p.Destination.ResourceID, p.CustosFormat, fmt.Sprint(p.Enable)}, nil
		}}.commands(f)...)
	return cmd
}

func newPLSCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "pls",
		Aliases: []string{"private-link-scope"},
		Short:   "Create, list, show and delete private link scopes and their scoped resources",
		Long: `Manage Azure Monitor private link scopes (Microsoft.Insights/privateLinkScopes) of the resource
group. A scope whose ingestion or query access mode is PrivateOnly closes the workspaces it scopes to
requests of that kind that do not arrive on a private listener or from a private network (see
docs/network.md).`,
	}
	f.register(cmd)
	path := rgChild("Microsoft.Insights/privateLinkScopes")
	var ingestion, query, location string
	create := &cobra.Command{
		Use:   "create NAME [--ingestion-access-mode Open|PrivateOnly] [--query-access-mode Open|PrivateOnly]",
		Short: "Create or update a private link scope",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body := map[string]any{"location": location, "properties": map[string]any{
				"accessModeSettings": map[string]any{"ingestionAccessMode": ingestion, "queryAccessMode": query, "exclusions": []any{}}}}
			return armCall(cmd, f, http.MethodPut, func(m *mgmtClient) (string, error) { return path(m, args[0]) }, apiVersionPLS, body)
		},
	}
	create.Flags().StringVar(&ingestion, "ingestion-access-mode", "Open", "Open or PrivateOnly")
	create.Flags().StringVar(&query, "query-access-mode", "Open", "Open or PrivateOnly")
	create.Flags().StringVar(&location, "location", "global", "location")
	cmd.AddCommand(create)
	cmd.AddCommand(armResource{what: "private link scope", apiVersion: apiVersionPLS, path: path, confirmDelete: true,
		columns: []string{"NAME", "INGESTION", "QUERY", "LOCATION"}, row: func(item json.RawMessage) ([]string, error) {
			var x struct {
				Name       string `json:"name"`
				Location   string `json:"location"`
				Properties struct {
					AccessModeSettings struct {
						IngestionAccessMode string `json:"ingestionAccessMode"`
						QueryAccessMode     string `json:"queryAccessMode"`
					} `json:"accessModeSettings"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(item, &x); err != nil {
				return nil, err
			}
			a := x.Properties.AccessModeSettings
			return []string{x.Name, a.IngestionAccessMode, a.QueryAccessMode, x.Location}, nil
		}}.commands(f)...)
	cmd.AddCommand(newScopedResourceCmd(f, path))
	return cmd
}

// newScopedResourceCmd is `custos pls scoped-resource`: the resources (for
// Custos: workspaces) a private link scope covers.
func newScopedResourceCmd(f *clientFlags, plsPath func(m *mgmtClient, name string) (string, error)) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "scoped-resource",
		Aliases: []string{"scoped-resources"},
		Short:   "Add, list, show and remove the resources a private link scope covers",
	}
	var scope string
	cmd.PersistentFlags().StringVar(&scope, "scope", "", "private link scope name (required)")
	path := func(m *mgmtClient, name string) (string, error) {
		if scope == "" {
			return "", fmt.Errorf("pass --scope NAME, the private link scope")
		}
		p, err := plsPath(m, scope)
		if err != nil {
			return "", err
		}
		p += "/scopedResources"
		if name != "" {
			p += "/" + url.PathEscape(name)
		}
		return p, nil
	}
	var workspace, resourceID string
	add := &cobra.Command{
		Use:   "add NAME --scope PLS (--workspace WS | --resource-id ID)",
		Short: "Add a workspace to a private link scope",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (workspace == "") == (resourceID == "") {
				return fmt.Errorf("pass exactly one of --workspace and --resource-id")
			}
			id := resourceID
			if id == "" {
				m, err := newMgmtClient(cmd, f)
				if err != nil {
					return err
				}
				rg, err := m.rgID()
				if err != nil {
					return err
				}
				id = rg + "/providers/Microsoft.OperationalInsights/workspaces/" + workspace
			}
			return armCall(cmd, f, http.MethodPut, func(m *mgmtClient) (string, error) { return path(m, args[0]) }, apiVersionPLS,
				map[string]any{"properties": map[string]any{"linkedResourceId": id}})
		},
	}
	add.Flags().StringVar(&workspace, "workspace", "", "workspace name in the resource group")
	add.Flags().StringVar(&resourceID, "resource-id", "", "ARM resource ID of the resource to scope")
	cmds := armResource{what: "scoped resource", apiVersion: apiVersionPLS, path: path, confirmDelete: true,
		columns: []string{"NAME", "LINKED RESOURCE"}, row: func(item json.RawMessage) ([]string, error) {
			var x struct {
				Name       string `json:"name"`
				Properties struct {
					LinkedResourceID string `json:"linkedResourceId"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(item, &x); err != nil {
				return nil, err
			}
			return []string{x.Name, x.Properties.LinkedResourceID}, nil
		}}.commands(f)
	cmds[2].Use, cmds[2].Aliases = "remove NAME", []string{"delete"}
	cmd.AddCommand(add)
	cmd.AddCommand(cmds...)
	return cmd
}

func newSavedSearchCmd() *cobra.Command {
	f := &clientFlags{}
	var workspace string
	cmd := &cobra.Command{
		Use:     "saved-search",
		Aliases: []string{"saved-searches", "function"},
		Short:   "Create, list, show and delete saved searches and workspace functions",
		Long: `Manage saved searches (Microsoft.OperationalInsights/workspaces/savedSearches): saved KQL queries
and, with --function-alias, workspace functions that queries call by name. The query text is stored
sealed under the workspace key.`,
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&workspace, "workspace", "", "workspace name (default: admin.json's workspaceName)")
	path := func(m *mgmtClient, name string) (string, error) {
		return workspaceChild(m, workspace, "savedSearches", name)
	}
	var category, display, query, queryFile, alias, params string
	create := &cobra.Command{
		Use:   "create ID --category C --display-name NAME (--query KQL | --query-file FILE)",
		Short: "Create or update a saved search (a function with --function-alias)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (query == "") == (queryFile == "") {
				return fmt.Errorf("pass exactly one of --query and --query-file")
			}
			if queryFile != "" {
				b, err := readInput(cmd, queryFile)
				if err != nil {
					return err
				}
				query = string(b)
			}
			if display == "" {
				display = args[0]
			}
			props := map[string]any{"category": category, "displayName": display, "query": query}
			if alias != "" {
				props["functionAlias"] = alias
			}
			if params != "" {
				props["functionParameters"] = params
			}
			return armCall(cmd, f, http.MethodPut, func(m *mgmtClient) (string, error) { return path(m, args[0]) }, apiVersionSavedSearches,
				map[string]any{"properties": props})
		},
	}
	create.Flags().StringVar(&category, "category", "General", "category")
	create.Flags().StringVar(&display, "display-name", "", "display name (default: ID)")
	create.Flags().StringVar(&query, "query", "", "the KQL query")
	create.Flags().StringVar(&queryFile, "query-file", "", "file holding the KQL query (- for stdin)")
	create.Flags().StringVar(&alias, "function-alias", "", "make it a workspace function callable by this name")
	create.Flags().StringVar(&params, "function-parameters", "", "the function's parameters, e.g. \"minLevel:int = 3\"")
	cmd.AddCommand(create)
	cmd.AddCommand(armResource{what: "saved search", apiVersion: apiVersionSavedSearches, path: path, confirmDelete: true,
		columns: []string{"ID", "CATEGORY", "DISPLAY NAME", "FUNCTION", "QUERY"}, row: func(item json.RawMessage) ([]string, error) {
			var x struct {
				Name       string `json:"name"`
				Properties struct {
					Category      string `json:"category"`
					DisplayName   string `json:"displayName"`
					Query         string `json:"query"`
					FunctionAlias string `json:"functionAlias"`
				} `json:"properties"`
			}
			if err := json.Unmarshal(item, &x); err != nil {
				return nil, err
			}
			p := x.Properties
			q := strings.Join(strings.Fields(p.Query), " ")
			if len(q) > 60 {
				q = q[:57] + "..."
			}
			return []string{x.Name, p.Category, p.DisplayName, p.FunctionAlias, q}, nil
		}}.commands(f)...)
	return cmd
}
