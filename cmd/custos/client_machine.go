package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

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
	var dcr string
	associateCmd := &cobra.Command{
		Use:   "associate CLUSTER --dcr RULE",
		Short: "Associate a data collection rule with a cluster (its agents apply the rule)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return associate(cmd, f, clusterID(args[0]), dcr, "", "")
		},
	}
	associateCmd.Flags().StringVar(&dcr, "dcr", "", "data collection rule name (in the resource group) or resource ID")
	_ = associateCmd.MarkFlagRequired("dcr")
	simple := func(use, short, method, suffix string) *cobra.Command {
		return &cobra.Command{Use: use + " CLUSTER", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return armCall(cmd, f, method, suffixed(clusterID(args[0]), suffix), apiVersionClusters, nil)
			}}
	}
	cmd.AddCommand(
		enrollTokenCmd(f, enrollToken{
			short:    "Create a one-time, expiring cluster enrollment token for the resource group",
			provider: "Microsoft.Kubernetes", apiVersion: apiVersionClusters,
			hint:           "one-time cluster token for %s, valid until %s; enroll with:\n  custos-agent enroll --cluster <name> --endpoint %s --token-file <file> --ca-file <ca.crt> --dir <identity dir>\n",
			endpointSuffix: "/enroll/connectedClusters",
		}),
		associateCmd,
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

// machineID and clusterID resolve a machine or connected cluster given by
// name (in the resource group) or resource ID.
func machineID(name string) armPath {
	return func(m *mgmtClient) (string, error) {
		return rgChild("Microsoft.HybridCompute/machines")(m, name)
	}
}

func clusterID(name string) armPath {
	return func(m *mgmtClient) (string, error) {
		return rgChild("Microsoft.Kubernetes/connectedClusters")(m, name)
	}
}

// suffixed is path plus a sub-path ("/providers/…", "/enableIdentity").
func suffixed(path armPath, suffix string) armPath {
	return func(m *mgmtClient) (string, error) {
		p, err := path(m)
		return p + suffix, err
	}
}

// associate creates the association of a data collection rule with a
// machine or cluster (name "" means RULE-association) and prints it.
func associate(cmd *cobra.Command, f *clientFlags, resource armPath, dcr, name, description string) error {
	return armCallBuilt(cmd, f, http.MethodPut, apiVersionAssocs, func(m *mgmtClient) (string, any, error) {
		id, err := resource(m)
		if err != nil {
			return "", nil, err
		}
		p, ruleID, err := associationPath(m, id, dcr, name)
		return p, map[string]any{"properties": map[string]any{"dataCollectionRuleId": ruleID, "description": description}}, err
	})
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
	enrollTok := enrollTokenCmd(f, enrollToken{
		short:    "Create a one-time, expiring enrollment token for the resource group",
		provider: "Microsoft.HybridCompute", apiVersion: apiVersionMachines,
		hint:           "one-time token for %s, valid until %s; on the machine run:\n  custos-agent enroll --endpoint %s --token <token> --ca-file <ca.crt>\n",
		endpointSuffix: "/enroll",
	})

	machines := armResource{
		what: "machine", apiVersion: apiVersionMachines, path: rgChild("Microsoft.HybridCompute/machines"),
		columns: []string{"NAME", "STATUS", "FQDN", "OS", "PRINCIPAL ID", "CLIENT ID"},
		row: func(item json.RawMessage) ([]string, error) {
			var x machineWire
			if err := json.Unmarshal(item, &x); err != nil {
				return nil, err
			}
			return []string{x.Name, x.Properties.Status, x.Properties.MachineFqdn, x.Properties.OSName,
				x.Identity.PrincipalID, x.Identity.ClientID}, nil
		},
	}
	list := machines.listCmd(f)
	list.Short = "List the machines of the resource group"
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Show a machine",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return armCall(cmd, f, http.MethodGet, machineID(args[0]), apiVersionMachines, nil)
		},
	}
	setEnabled := func(use, short string, enabled bool) *cobra.Command {
		return &cobra.Command{
			Use:   use + " NAME",
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return armCall(cmd, f, http.MethodPatch, machineID(args[0]), apiVersionMachines,
					map[string]any{"properties": map[string]any{"identityEnabled": enabled}})
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
			return armCall(cmd, f, http.MethodDelete, machineID(args[0]), apiVersionMachines, nil)
		},
	}
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")

	var dcr, assocName, description string
	associateCmd := &cobra.Command{
		Use:   "associate MACHINE --dcr RULE",
		Short: "Associate a data collection rule with a machine (its agent applies the rule)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return associate(cmd, f, machineID(args[0]), dcr, assocName, description)
		},
	}
	associateCmd.Flags().StringVar(&dcr, "dcr", "", "data collection rule name (in the resource group) or resource ID")
	associateCmd.Flags().StringVar(&assocName, "name", "", "association name (default RULE-association)")
	associateCmd.Flags().StringVar(&description, "description", "", "description")
	_ = associateCmd.MarkFlagRequired("dcr")
	const assocs = "/providers/Microsoft.Insights/dataCollectionRuleAssociations"
	associations := &cobra.Command{
		Use:   "associations MACHINE",
		Short: "List the data collection rule associations of a machine",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return armCall(cmd, f, http.MethodGet, suffixed(machineID(args[0]), assocs), apiVersionAssocs, nil)
		},
	}
	dissociate := &cobra.Command{
		Use:   "dissociate MACHINE ASSOCIATION",
		Short: "Delete a data collection rule association",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return armCall(cmd, f, http.MethodDelete, suffixed(machineID(args[0]), assocs+"/"+url.PathEscape(args[1])), apiVersionAssocs, nil)
		},
	}
	cmd.AddCommand(enrollTok, list, show,
		setEnabled("disable", "Disable a machine's identity (its tokens stop working within seconds)", false),
		setEnabled("enable", "Enable a machine's identity again", true),
		del, associateCmd, associations, dissociate)
	return cmd
}
