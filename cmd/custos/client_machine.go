package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

// API versions the machine and identity verbs send.
const (
	apiVersionMachines   = "2024-07-10"
	apiVersionIdentities = "2023-01-31"
	apiVersionAssocs     = "2022-06-01"
	apiVersionClusters   = "2024-01-01"
)

// addMachineCommands registers the machine and identity verbs (called from
// addClientCommands).
func addMachineCommands(root *cobra.Command) {
	root.AddCommand(newMachineCmd(), newIdentityCmd(), newConnectedClusterCmd())
}

// newConnectedClusterCmd is `custos cluster`: Kubernetes clusters enrolled
// as Microsoft.Kubernetes/connectedClusters by custos-agent.
func newConnectedClusterCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Enroll Kubernetes clusters (connectedClusters) and associate rules with them",
		Long: `Kubernetes clusters are Microsoft.Kubernetes/connectedClusters resources with a
system-assigned managed identity shared by the cluster's custos-agent pods.
Create a one-time token with 'custos cluster enroll-token', enroll with
'custos-agent enroll --cluster NAME --token-file F' and store the identity
directory as a Secret (docs/containers.md).`,
	}
	f.register(cmd)
	call := func(cmd *cobra.Command, name, method, suffix string, body any) error {
		m, err := newMgmtClient(cmd, f)
		if err != nil {
			return err
		}
		rg, err := m.rgID()
		if err != nil {
			return err
		}
		id := name
		if !strings.HasPrefix(id, "/") {
			id = rg + "/providers/Microsoft.Kubernetes/connectedClusters/" + name
		}
		ctx, cancel := f.context(cmd)
		defer cancel()
		data, _, err := m.call(ctx, method, id+suffix, apiVersionClusters, body)
		if err != nil {
			return err
		}
		if len(data) > 0 {
			_, err = cmd.OutOrStdout().Write(append(data, '\n'))
		}
		return err
	}
	var expires time.Duration
	enrollTok := &cobra.Command{
		Use:   "enroll-token",
		Short: "Create a one-time, expiring cluster enrollment token for the resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newMgmtClient(cmd, f)
			if err != nil {
				return err
			}
			rg, err := m.rgID()
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			data, _, err := m.call(ctx, http.MethodPost, rg+"/providers/Microsoft.Kubernetes/createEnrollmentToken", apiVersionClusters,
				map[string]any{"expiresInSeconds": int64(expires / time.Second)})
			if err != nil {
				return err
			}
			if f.json() {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			var t struct{ Token, ExpiresOn, EnrollmentEndpoint, ResourceGroupID string }
			if err := json.Unmarshal(data, &t); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "one-time cluster token for %s, valid until %s; enroll with:\n  custos-agent enroll --cluster <name> --endpoint %s --token-file <file> --ca-file <ca.crt> --dir <identity dir>\n",
				t.ResourceGroupID, t.ExpiresOn, strings.TrimSuffix(t.EnrollmentEndpoint, "/enroll/connectedClusters"))
			return nil
		},
	}
	enrollTok.Flags().DurationVar(&expires, "expires", time.Hour, "token lifetime (1m to 168h)")
	var dcr string
	associate := &cobra.Command{
		Use:   "associate CLUSTER --dcr RULE",
		Short: "Associate a data collection rule with a cluster (its agents apply the rule)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dcrID := dcr
			if !strings.HasPrefix(dcrID, "/") {
				m, err := newMgmtClient(cmd, f)
				if err != nil {
					return err
				}
				rg, err := m.rgID()
				if err != nil {
					return err
				}
				dcrID = rg + "/providers/Microsoft.Insights/dataCollectionRules/" + dcr
			}
			name := dcrID[strings.LastIndex(dcrID, "/")+1:] + "-association"
			return call(cmd, args[0], http.MethodPut, "/providers/Microsoft.Insights/dataCollectionRuleAssociations/"+name,
				map[string]any{"properties": map[string]any{"dataCollectionRuleId": dcrID}})
		},
	}
	associate.Flags().StringVar(&dcr, "dcr", "", "data collection rule name (in the resource group) or resource ID")
	_ = associate.MarkFlagRequired("dcr")
	simple := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{Use: use + " CLUSTER", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error { return call(cmd, args[0], method, suffix, nil) }}
	}
	cmd.AddCommand(enrollTok, associate,
		simple("show", "Show a connected cluster and its identity", http.MethodGet, ""),
		simple("disable", "Disable the cluster's identity (its agents stop sending)", http.MethodPost, "/disableIdentity"),
		simple("enable", "Enable the cluster's identity again", http.MethodPost, "/enableIdentity"),
		simple("delete", "Delete a connected cluster and its identity", http.MethodDelete, ""))
	return cmd
}

// mgmtClient makes ARM calls for the machine and identity verbs.
type mgmtClient struct {
	cfg   cli.Config
	c     *cli.Client
	httpc *http.Client
}

func newMgmtClient(cmd *cobra.Command, f *clientFlags) (*mgmtClient, error) {
	cfg, err := f.config(cmd)
	if err != nil {
		return nil, err
	}
	c, err := cli.New(cli.Options{Config: cfg})
	if err != nil {
		return nil, err
	}
	hc, err := cli.NewHTTPClient(cfg.CAFile)
	if err != nil {
		return nil, err
	}
	return &mgmtClient{cfg: cfg, c: c, httpc: hc}, nil
}

func (m *mgmtClient) rgID() (string, error) {
	if m.cfg.SubscriptionID == "" || m.cfg.ResourceGroup == "" {
		return "", fmt.Errorf("no subscription or resource group: pass --subscription and --resource-group (or set them in admin.json)")
	}
	return "/subscriptions/" + m.cfg.SubscriptionID + "/resourceGroups/" + m.cfg.ResourceGroup, nil
}

func (m *mgmtClient) machineID(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return name, nil
	}
	rg, err := m.rgID()
	if err != nil {
		return "", err
	}
	return rg + "/providers/Microsoft.HybridCompute/machines/" + name, nil
}

// call sends one management request and returns the body of a 2xx answer.
func (m *mgmtClient) call(ctx context.Context, method, path, apiVersion string, body any) ([]byte, int, error) {
	tok, err := m.c.Token(ctx, "management")
	if err != nil {
		return nil, 0, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, 0, err
		}
		rd = bytes.NewReader(b)
	}
	u := m.c.Endpoint() + path + "?api-version=" + url.QueryEscape(apiVersion)
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := m.httpc.Do(req)
	if err != nil {
		return nil, 0, cli.Explain(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, resp.StatusCode, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, resp.StatusCode, cli.ParseErrorResponse(resp.StatusCode, resp.Header, data)
	}
	return data, resp.StatusCode, nil
}

// machineWire is the part of a machine resource the table output shows.
type machineWire struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Location string `json:"location"`
	Identity struct {
		PrincipalID string `json:"principalId"`
		ClientID    string `json:"clientId"`
	} `json:"identity"`
	Properties struct {
		Status          string `json:"status"`
		MachineFqdn     string `json:"machineFqdn"`
		OSName          string `json:"osName"`
		IdentityEnabled bool   `json:"identityEnabled"`
	} `json:"properties"`
}

func newMachineCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "machine",
		Aliases: []string{"machines"},
		Short:   "Enroll, list, disable and delete monitored machines",
		Long: `Machines are Microsoft.HybridCompute/machines resources, each with a
system-assigned managed identity. A machine enrolls itself with a one-time
token from 'custos machine enroll-token' (custos-agent enroll), proving its
identity afterwards with a key that never leaves it.`,
	}
	f.register(cmd)
	var expires time.Duration
	enrollTok := &cobra.Command{
		Use:   "enroll-token",
		Short: "Create a one-time, expiring enrollment token for the resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newMgmtClient(cmd, f)
			if err != nil {
				return err
			}
			rg, err := m.rgID()
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			secs := int64(expires / time.Second)
			data, _, err := m.call(ctx, http.MethodPost, rg+"/providers/Microsoft.HybridCompute/createEnrollmentToken", apiVersionMachines,
				map[string]any{"expiresInSeconds": secs})
			if err != nil {
				return err
			}
			if f.json() {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			var t struct{ Token, ExpiresOn, EnrollmentEndpoint, ResourceGroupID string }
			if err := json.Unmarshal(data, &t); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), t.Token)
			fmt.Fprintf(cmd.ErrOrStderr(), "one-time token for %s, valid until %s; on the machine run:\n  custos-agent enroll --endpoint %s --token <token> --ca-file <ca.crt>\n",
				t.ResourceGroupID, t.ExpiresOn, strings.TrimSuffix(t.EnrollmentEndpoint, "/enroll"))
			return nil
		},
	}
	enrollTok.Flags().DurationVar(&expires, "expires", time.Hour, "token lifetime (1m to 168h)")

	list := &cobra.Command{
		Use:   "list",
		Short: "List the machines of the resource group",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newMgmtClient(cmd, f)
			if err != nil {
				return err
			}
			rg, err := m.rgID()
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			data, _, err := m.call(ctx, http.MethodGet, rg+"/providers/Microsoft.HybridCompute/machines", apiVersionMachines, nil)
			if err != nil {
				return err
			}
			if f.json() {
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			var l struct{ Value []machineWire }
			if err := json.Unmarshal(data, &l); err != nil {
				return err
			}
			t := &cli.Table{Columns: []string{"NAME", "STATUS", "FQDN", "OS", "PRINCIPAL ID", "CLIENT ID"}}
			for _, x := range l.Value {
				t.Rows = append(t.Rows, []string{x.Name, x.Properties.Status, x.Properties.MachineFqdn, x.Properties.OSName,
					x.Identity.PrincipalID, x.Identity.ClientID})
			}
			return t.Write(cmd.OutOrStdout())
		},
	}
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a machine",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return machineCall(cmd, f, args[0], http.MethodGet, "", nil)
		},
	}
	setEnabled := func(use, short string, enabled bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return machineCall(cmd, f, args[0], http.MethodPatch, "", map[string]any{"properties": map[string]any{"identityEnabled": enabled}})
			},
		}
	}
	var yes bool
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a machine and its managed identity (its tokens stop working)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := confirm(cmd, yes, "Deleting machine "+args[0]+" and its identity"); err != nil {
				return err
			}
			return machineCall(cmd, f, args[0], http.MethodDelete, "", nil)
		},
	}
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")

	var dcr, assocName, description string
	associate := &cobra.Command{
		Use:   "associate MACHINE --dcr RULE",
		Short: "Associate a data collection rule with a machine (its agent applies the rule)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dcrID := dcr
			if !strings.HasPrefix(dcrID, "/") {
				m, err := newMgmtClient(cmd, f)
				if err != nil {
					return err
				}
				rg, err := m.rgID()
				if err != nil {
					return err
				}
				dcrID = rg + "/providers/Microsoft.Insights/dataCollectionRules/" + dcr
			}
			name := assocName
			if name == "" {
				name = dcrID[strings.LastIndex(dcrID, "/")+1:] + "-association"
			}
			body := map[string]any{"properties": map[string]any{"dataCollectionRuleId": dcrID, "description": description}}
			return machineCall(cmd, f, args[0], http.MethodPut, "/providers/Microsoft.Insights/dataCollectionRuleAssociations/"+name, body)
		},
	}
	associate.Flags().StringVar(&dcr, "dcr", "", "data collection rule name (in the resource group) or resource ID")
	associate.Flags().StringVar(&assocName, "name", "", "association name (default RULE-association)")
	associate.Flags().StringVar(&description, "description", "", "description")
	_ = associate.MarkFlagRequired("dcr")
	associations := &cobra.Command{
		Use:   "associations MACHINE",
		Short: "List the data collection rule associations of a machine",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return machineCall(cmd, f, args[0], http.MethodGet, "/providers/Microsoft.Insights/dataCollectionRuleAssociations", nil)
		},
	}
	dissociate := &cobra.Command{
		Use:   "dissociate MACHINE ASSOCIATION",
		Short: "Delete a data collection rule association",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return machineCall(cmd, f, args[0], http.MethodDelete, "/providers/Microsoft.Insights/dataCollectionRuleAssociations/"+args[1], nil)
		},
	}
	cmd.AddCommand(enrollTok, list, show,
		setEnabled("disable", "Disable a machine's identity (its tokens stop working within seconds)", false),
		setEnabled("enable", "Enable a machine's identity again", true),
		del, associate, associations, dissociate)
	return cmd
}

// machineCall sends one request about machine (a name or resource ID) plus
// suffix, and prints the JSON answer (nothing for an empty one).
func machineCall(cmd *cobra.Command, f *clientFlags, machine, method, suffix string, body any) error {
	m, err := newMgmtClient(cmd, f)
	if err != nil {
		return err
	}
	id, err := m.machineID(machine)
	if err != nil {
		return err
	}
	ctx, cancel := f.context(cmd)
	defer cancel()
	ver := apiVersionMachines
	if suffix != "" {
		ver = apiVersionAssocs
	}
	data, _, err := m.call(ctx, method, id+suffix, ver, body)
	if err != nil {
		return err
	}
	return writeIndented(cmd, data)
}

func writeIndented(cmd *cobra.Command, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		_, err = cmd.OutOrStdout().Write(data)
		return err
	}
	buf.WriteByte('\n')
	_, err := cmd.OutOrStdout().Write(buf.Bytes())
	return err
}
