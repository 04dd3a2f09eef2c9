package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

// API versions the alert verbs send.
const (
	apiVersionRules       = "2023-12-01"
	apiVersionGroups      = "2023-01-01"
	apiVersionAlerts      = "2019-05-05-preview"
	apiVersionActionRules = "2021-08-08"
	apiVersionMetric      = "2018-03-01"
	apiVersionActivityLog = "2020-10-01"
)

// newAlertCmd is `custos alert`: log search alert rules, action groups,
// alert processing rules and the alerts they raise.
func newAlertCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "alert",
		Aliases: []string{"alerts"},
		Short:   "Manage log search, metric and activity log alert rules, action groups and alerts",
		Long: `Manage log search alert rules (Microsoft.Insights/scheduledQueryRules), metric alert rules
(Microsoft.Insights/metricAlerts), activity log alert rules (Microsoft.Insights/activityLogAlerts), action groups,
alert processing rules (Microsoft.AlertsManagement/actionRules), and the alerts they raise.
Resources are created from their ARM JSON (see docs/alerts.md).`,
	}
	f.register(cmd)
	cmd.AddCommand(
		newAlertResourceCmd(f, "rule", "log search alert rules", "Microsoft.Insights/scheduledQueryRules", apiVersionRules),
		newAlertResourceCmd(f, "metric-rule", "metric alert rules", "Microsoft.Insights/metricAlerts", apiVersionMetric),
		newAlertResourceCmd(f, "activity-rule", "activity log alert rules", "Microsoft.Insights/activityLogAlerts", apiVersionActivityLog),
		newAlertResourceCmd(f, "action-group", "action groups", "Microsoft.Insights/actionGroups", apiVersionGroups),
		newAlertResourceCmd(f, "processing-rule", "alert processing rules", "Microsoft.AlertsManagement/actionRules", apiVersionActionRules),
		newAlertListCmd(f),
		newAlertGetCmd(f, "show ID", "Show an alert", ""),
		newAlertGetCmd(f, "history ID", "Show an alert's history", "/history"),
		newAlertGetCmd(f, "notifications ID", "Show an alert's notifications and every delivery attempt", "/notifications"),
		newAlertStateCmd(f, "ack", "Acknowledged"),
		newAlertStateCmd(f, "close", "Closed"),
		newAlertStateCmd(f, "reopen", "New"),
	)
	return cmd
}

// armItem is what the list tables show of any alert resource.
type armItem struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Location   string          `json:"location"`
	Properties json.RawMessage `json:"properties"`
}

func newAlertResourceCmd(f *clientFlags, use, what, typ, apiVersion string) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: "Create, list, show and delete " + what}
	res := armResource{
		what: strings.TrimSuffix(what, "s"), plural: what + " of the resource group", apiVersion: apiVersion, path: rgChild(typ),
		columns: []string{"NAME", "LOCATION", "SUMMARY"},
		row: func(item json.RawMessage) ([]string, error) {
			var it armItem
			if err := json.Unmarshal(item, &it); err != nil {
				return nil, err
			}
			return []string{it.Name, it.Location, alertSummary(it.Properties)}, nil
		},
	}
	var file string
	create := &cobra.Command{
		Use:   "create NAME -f resource.json",
		Short: "Create or update one of the " + what + " from its ARM JSON (\"-\" reads stdin)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			body, err := readAlertBody(cmd, file)
			if err != nil {
				return err
			}
			return armCall(cmd, f, http.MethodPut, res.item(args[0]), apiVersion, json.RawMessage(body))
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "ARM JSON body of the resource")
	_ = create.MarkFlagRequired("file")
	cmd.AddCommand(create)
	cmd.AddCommand(res.commands(f)...)
	return cmd
}

// alertSummary picks the most telling properties of an alert resource for the
// list table: a rule's status, a group's receivers, a processing rule's action.
func alertSummary(props json.RawMessage) string {
	var p struct {
		Enabled          *bool `json:"enabled"`
		Severity         *int  `json:"severity"`
		EvaluationStatus *struct {
			LastResult string `json:"lastResult"`
			LastError  string `json:"lastError"`
		} `json:"evaluationStatus"`
		EmailReceivers   []json.RawMessage `json:"emailReceivers"`
		WebhookReceivers []json.RawMessage `json:"webhookReceivers"`
		Actions          json.RawMessage   `json:"actions"`
	}
	_ = json.Unmarshal(props, &p)
	var parts []string
	if p.Enabled != nil && !*p.Enabled {
		parts = append(parts, "disabled")
	}
	if p.Severity != nil {
		parts = append(parts, fmt.Sprintf("Sev%d", *p.Severity))
	}
	if s := p.EvaluationStatus; s != nil && s.LastResult != "" {
		r := "last evaluation " + s.LastResult
		if s.LastError != "" {
			r += ": " + s.LastError
		}
		parts = append(parts, r)
	}
	if len(p.EmailReceivers)+len(p.WebhookReceivers) > 0 {
		parts = append(parts, fmt.Sprintf("%d email, %d webhook receivers", len(p.EmailReceivers), len(p.WebhookReceivers)))
	}
	if len(p.Actions) > 0 && p.Severity == nil && p.EvaluationStatus == nil {
		parts = append(parts, "actions "+string(p.Actions))
	}
	return strings.Join(parts, "; ")
}

func alertsPath(m *mgmtClient) (string, error) {
	if m.cfg.SubscriptionID == "" {
		return "", fmt.Errorf("no subscription: pass --subscription (or set it in admin.json)")
	}
	return "/subscriptions/" + m.cfg.SubscriptionID + "/providers/Microsoft.AlertsManagement/alerts", nil
}

func alertPath(m *mgmtClient, id string) (string, error) {
	if strings.HasPrefix(id, "/") {
		return id, nil
	}
	base, err := alertsPath(m)
	if err != nil {
		return "", err
	}
	return base + "/" + url.PathEscape(id), nil
}

func newAlertListCmd(f *clientFlags) *cobra.Command {
	var condition, state, severity string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the alerts of the subscription, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := newMgmtClient(cmd, f)
			if err != nil {
				return err
			}
			p, err := alertsPath(m)
			if err != nil {
				return err
			}
			ver := apiVersionAlerts
			for k, v := range map[string]string{"monitorCondition": condition, "alertState": state, "severity": severity} {
				if v != "" {
					ver += "&" + k + "=" + url.QueryEscape(v)
				}
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			data, _, err := m.call(ctx, http.MethodGet, p, ver, nil)
			if err != nil {
				return err
			}
			if f.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), data)
			}
			var l struct {
				Value []struct {
					ID         string `json:"id"`
					Name       string `json:"name"`
					Properties struct {
						Essentials struct {
							Severity, AlertState, MonitorCondition, StartDateTime, TargetResourceName string
						} `json:"essentials"`
					} `json:"properties"`
				} `json:"value"`
			}
			if err := json.Unmarshal(data, &l); err != nil {
				return fmt.Errorf("decode alerts: %w", err)
			}
			t := &cli.Table{Columns: []string{"ID", "RULE", "SEVERITY", "CONDITION", "STATE", "FIRED", "TARGET"}}
			for _, a := range l.Value {
				es := a.Properties.Essentials
				t.Rows = append(t.Rows, []string{a.ID[strings.LastIndexByte(a.ID, '/')+1:], a.Name, es.Severity, es.MonitorCondition,
					es.AlertState, es.StartDateTime, es.TargetResourceName})
			}
			return t.Write(cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&condition, "condition", "", "only Fired or Resolved alerts")
	cmd.Flags().StringVar(&state, "state", "", "only New, Acknowledged or Closed alerts")
	cmd.Flags().StringVar(&severity, "severity", "", "only alerts of this severity (Sev0..Sev4)")
	return cmd
}

func newAlertGetCmd(f *clientFlags, use, short, suffix string) *cobra.Command {
	return &cobra.Command{
		Use: use, Short: short, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return armCall(cmd, f, http.MethodGet, func(m *mgmtClient) (string, error) {
				p, err := alertPath(m, args[0])
				return p + suffix, err
			}, apiVersionAlerts, nil)
		},
	}
}

func newAlertStateCmd(f *clientFlags, verb, state string) *cobra.Command {
	return &cobra.Command{
		Use: verb + " ID", Short: "Set an alert's state to " + state, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return armCall(cmd, f, http.MethodPost, func(m *mgmtClient) (string, error) {
				p, err := alertPath(m, args[0])
				return p + "/changestate", err
			}, apiVersionAlerts+"&newState="+state, nil)
		},
	}
}

func readAlertBody(cmd *cobra.Command, file string) ([]byte, error) {
	var r io.Reader
	if file == "-" {
		r = cmd.InOrStdin()
	} else {
		fh, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer fh.Close()
		r = fh
	}
	data, err := io.ReadAll(io.LimitReader(r, 4<<20))
	if err != nil {
		return nil, err
	}
	if !json.Valid(data) {
		return nil, fmt.Errorf("%s is not valid JSON", file)
	}
	return data, nil
}
