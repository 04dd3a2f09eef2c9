package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newAccessCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:   "access",
		Short: "Just-in-time data access: request, approve, reject, revoke and list access requests",
		Long: `With identity.justInTimeAccess on, role assignments at "/" (the installation's
administrators) grant no access to log data. An administrator requests time-bound access to a
workspace; an owner of that workspace (an assignment below "/") approves or rejects it. Approval
creates a role assignment that expires by itself. Every step is in the activity log.`,
	}
	f.register(cmd)
	reqPath := func(cmd *cobra.Command, ws, name string) (string, error) {
		c, err := f.client(cmd)
		if err != nil {
			return "", err
		}
		p := ws
		if !strings.HasPrefix(ws, "/") {
			if c.Config().SubscriptionID == "" || c.Config().ResourceGroup == "" {
				return "", fmt.Errorf("%w: name the workspace by resource ID, or set subscription and resource group", cli.ErrNoConfig)
			}
			p = c.WorkspaceResourceID(ws)
		}
		p += "/providers/Custos.Access/accessRequests"
		if name != "" {
			p += "/" + name
		}
		return p, nil
	}
	var justification, role string
	var duration time.Duration
	request := &cobra.Command{
		Use:   "request WORKSPACE --justification TEXT [--duration 1h]",
		Short: "Ask for time-bound data access to a workspace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := reqPath(cmd, args[0], "")
			if err != nil {
				return err
			}
			props := map[string]any{"justification": justification, "durationInMinutes": int(duration / time.Minute)}
			if role != "" {
				props["roleDefinitionId"] = role
			}
			return accessCall(cmd, f, http.MethodPost, p, map[string]any{"properties": props})
		},
	}
	request.Flags().StringVar(&justification, "justification", "", "why the access is needed (required)")
	request.Flags().DurationVar(&duration, "duration", time.Hour, "how long the access lasts (5m to 8h)")
	request.Flags().StringVar(&role, "role", "", "role definition GUID to request (default Log Analytics Reader)")
	decide := func(use, short, op string) *cobra.Command {
		var reason string
		c := &cobra.Command{
			Use:   use + " WORKSPACE REQUEST",
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				p, err := reqPath(cmd, args[0], args[1])
				if err != nil {
					return err
				}
				var body any
				if op != "revoke" {
					body = map[string]string{"reason": reason}
				}
				return accessCall(cmd, f, http.MethodPost, p+"/"+op, body)
			},
		}
		if op != "revoke" {
			c.Flags().StringVar(&reason, "reason", "", "a note kept with the decision")
		}
		return c
	}
	list := &cobra.Command{
		Use:   "list WORKSPACE",
		Short: "List a workspace's access requests",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := reqPath(cmd, args[0], "")
			if err != nil {
				return err
			}
			return accessCall(cmd, f, http.MethodGet, p, nil)
		},
	}
	cmd.AddCommand(request, decide("approve", "Approve a pending request (workspace owners)", "approve"),
		decide("reject", "Reject a pending request (workspace owners)", "reject"),
		decide("revoke", "End approved access early (workspace owners)", "revoke"), list)
	return cmd
}

func accessCall(cmd *cobra.Command, f *clientFlags, method, path string, body any) error {
	return dirCall(cmd, f, method, path, body, func(data []byte) (*cli.Table, error) {
		var one struct {
			Name       string          `json:"name"`
			Properties json.RawMessage `json:"properties"`
		}
		var l struct {
			Value []struct {
				Name       string          `json:"name"`
				Properties json.RawMessage `json:"properties"`
			} `json:"value"`
		}
		if err := json.Unmarshal(data, &l); err != nil || l.Value == nil {
			if err := json.Unmarshal(data, &one); err != nil {
				return nil, err
			}
			l.Value = append(l.Value, one)
		}
		t := &cli.Table{Columns: []string{"NAME", "STATUS", "REQUESTER", "MINUTES", "JUSTIFICATION", "EXPIRES"}}
		for _, v := range l.Value {
			var p struct {
				Status, RequesterID, Justification, AccessExpiresOn string
				DurationInMinutes                                   int
			}
			_ = json.Unmarshal(v.Properties, &p)
			t.Rows = append(t.Rows, []string{v.Name, p.Status, p.RequesterID, fmt.Sprint(p.DurationInMinutes), p.Justification, p.AccessExpiresOn})
		}
		return t, nil
	})
}
