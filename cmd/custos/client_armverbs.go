package main

import (
	"bytes"
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

// The pieces every ARM resource verb is made of: one management call
// (armDo), its printed answer (armCall), the list/show/delete verbs of a
// resource type (armResource) and the enrollment-token verb shared by
// machines and clusters (enrollTokenCmd).

// armPath resolves the path of one call against the configured
// subscription and resource group.
type armPath func(m *mgmtClient) (string, error)

// armRequest builds one management request once the client is known: its
// path and body (nil for none; a json.RawMessage is sent as is).
type armRequest func(m *mgmtClient) (path string, body any, err error)

// armSend sends one management request and returns the body of a 2xx
// answer and its status code.
func armSend(cmd *cobra.Command, f *clientFlags, method, apiVersion string, build armRequest) ([]byte, int, error) {
	m, err := newMgmtClient(cmd, f)
	if err != nil {
		return nil, 0, err
	}
	p, body, err := build(m)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := f.context(cmd)
	defer cancel()
	return m.call(ctx, method, p, apiVersion, body)
}

// armDo is armSend with a fixed body.
func armDo(cmd *cobra.Command, f *clientFlags, method string, path armPath, apiVersion string, body any) ([]byte, int, error) {
	return armSend(cmd, f, method, apiVersion, func(m *mgmtClient) (string, any, error) {
		p, err := path(m)
		return p, body, err
	})
}

// armCall sends one request and prints the answer: indented JSON, or for a
// DELETE "deleted" (or "nothing to delete" when the resource did not exist,
// ARM's 204).
func armCall(cmd *cobra.Command, f *clientFlags, method string, path armPath, apiVersion string, body any) error {
	return armCallBuilt(cmd, f, method, apiVersion, func(m *mgmtClient) (string, any, error) {
		p, err := path(m)
		return p, body, err
	})
}

// armCallBuilt is armCall for a request whose body needs the client.
func armCallBuilt(cmd *cobra.Command, f *clientFlags, method, apiVersion string, build armRequest) error {
	data, code, err := armSend(cmd, f, method, apiVersion, build)
	if err != nil {
		return err
	}
	if method == http.MethodDelete {
		if code == http.StatusNoContent {
			fmt.Fprintln(cmd.OutOrStdout(), "nothing to delete")
		} else {
			fmt.Fprintln(cmd.OutOrStdout(), "deleted")
		}
		return nil
	}
	return writeIndentedJSON(cmd.OutOrStdout(), data)
}

// writeIndentedJSON prints data indented, as is when it is not JSON, and
// nothing when it is empty.
func writeIndentedJSON(w io.Writer, data []byte) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, data, "", "  "); err != nil {
		_, err = w.Write(data)
		return err
	}
	buf.WriteByte('\n')
	_, err := buf.WriteTo(w)
	return err
}

// writeIndented is writeIndentedJSON to the command's standard output.
func writeIndented(cmd *cobra.Command, data []byte) error {
	return writeIndentedJSON(cmd.OutOrStdout(), data)
}

// rgChild returns the path function of a resource type under the
// configured resource group (typ is "Microsoft.X/things"): the collection
// for name "", the item otherwise. A name that starts with "/" is taken as a
// whole resource ID.
func rgChild(typ string) func(m *mgmtClient, name string) (string, error) {
	return func(m *mgmtClient, name string) (string, error) {
		if strings.HasPrefix(name, "/") {
			return name, nil
		}
		rg, err := m.rgID()
		if err != nil {
			return "", err
		}
		p := rg + "/providers/" + typ
		if name != "" {
			p += "/" + url.PathEscape(name)
		}
		return p, nil
	}
}

// armResource describes one ARM resource type for its list, show and
// delete verbs.
type armResource struct {
	what       string // singular, for help texts: "data export rule"
	plural     string // "" means what+"s"
	apiVersion string
	// path returns the collection (name "") or the item path.
	path func(m *mgmtClient, name string) (string, error)
	// columns and row make the list table (row gets one item of value[]).
	columns []string
	row     func(item json.RawMessage) ([]string, error)
	// confirmDelete makes delete ask (or want --yes) first.
	confirmDelete bool
}

func (r armResource) plurals() string {
	if r.plural != "" {
		return r.plural
	}
	return r.what + "s"
}

// item is the path function of one named item.
func (r armResource) item(name string) armPath {
	return func(m *mgmtClient) (string, error) { return r.path(m, name) }
}

// commands returns the list, show and delete verbs.
func (r armResource) commands(f *clientFlags) []*cobra.Command {
	return []*cobra.Command{r.listCmd(f), r.showCmd(f), r.deleteCmd(f)}
}

func (r armResource) listCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the " + r.plurals(), Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, _, err := armDo(cmd, f, http.MethodGet, r.item(""), r.apiVersion, nil)
			if err != nil {
				return err
			}
			if f.json() {
				return writeIndentedJSON(cmd.OutOrStdout(), data)
			}
			var l struct {
				Value []json.RawMessage `json:"value"`
			}
			if err := json.Unmarshal(data, &l); err != nil {
				return fmt.Errorf("decode list: %w", err)
			}
			t := &cli.Table{Columns: r.columns}
			for _, it := range l.Value {
				row, err := r.row(it)
				if err != nil {
					return fmt.Errorf("decode %s: %w", r.what, err)
				}
				t.Rows = append(t.Rows, row)
			}
			return t.Write(cmd.OutOrStdout())
		},
	}
}

func (r armResource) showCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "show NAME", Short: "Show a " + r.what + " (ARM JSON)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return armCall(cmd, f, http.MethodGet, r.item(args[0]), r.apiVersion, nil)
		},
	}
}

func (r armResource) deleteCmd(f *clientFlags) *cobra.Command {
	var yes bool
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a " + r.what, Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if r.confirmDelete {
				if err := confirm(cmd, yes, fmt.Sprintf("deleting %s %q", r.what, args[0])); err != nil {
					return err
				}
			}
			return armCall(cmd, f, http.MethodDelete, r.item(args[0]), r.apiVersion, nil)
		},
	}
	if r.confirmDelete {
		del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	}
	return del
}

// enrollToken describes the enrollment-token verb of machines or clusters.
type enrollToken struct {
	short      string
	provider   string // "Microsoft.HybridCompute"
	apiVersion string
	// hint is printed to stderr after the token: a format with the
	// resource group ID, the expiry and the endpoint (the enrollment
	// endpoint less endpointSuffix).
	hint           string
	endpointSuffix string
}

// enrollTokenCmd is `custos machine|cluster enroll-token`: POST
// …/providers/{provider}/createEnrollmentToken, printing the token on
// stdout and how to use it on stderr.
func enrollTokenCmd(f *clientFlags, e enrollToken) *cobra.Command {
	var expires time.Duration
	cmd := &cobra.Command{
		Use:   "enroll-token",
		Short: e.short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, _, err := armDo(cmd, f, http.MethodPost, func(m *mgmtClient) (string, error) {
				rg, err := m.rgID()
				return rg + "/providers/" + e.provider + "/createEnrollmentToken", err
			}, e.apiVersion, map[string]any{"expiresInSeconds": int64(expires / time.Second)})
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
			fmt.Fprintf(cmd.ErrOrStderr(), e.hint, t.ResourceGroupID, t.ExpiresOn, strings.TrimSuffix(t.EnrollmentEndpoint, e.endpointSuffix))
			return nil
		},
	}
	cmd.Flags().DurationVar(&expires, "expires", time.Hour, "token lifetime (1m to 168h)")
	return cmd
}

// dcrID resolves a data collection rule given by name (in the resource
// group) or by resource ID.
func dcrID(m *mgmtClient, dcr string) (string, error) {
	if strings.HasPrefix(dcr, "/") {
		return dcr, nil
	}
	rg, err := m.rgID()
	if err != nil {
		return "", err
	}
	return rg + "/providers/Microsoft.Insights/dataCollectionRules/" + dcr, nil
}

// associationPath is the path of the association of a rule with a
// resource: name "" means RULE-association.
func associationPath(m *mgmtClient, resourceID, dcr, name string) (path, ruleID string, err error) {
	if ruleID, err = dcrID(m, dcr); err != nil {
		return "", "", err
	}
	if name == "" {
		name = ruleID[strings.LastIndex(ruleID, "/")+1:] + "-association"
	}
	return resourceID + "/providers/Microsoft.Insights/dataCollectionRuleAssociations/" + name, ruleID, nil
}
