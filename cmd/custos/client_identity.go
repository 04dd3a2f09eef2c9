package main

import (
	"encoding/json"
	"net/http"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newIdentityCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "identity",
		Aliases: []string{"identities"},
		Short:   "Create, list, show and delete user-assigned managed identities",
	}
	f.register(cmd)
	path := rgChild("Microsoft.ManagedIdentity/userAssignedIdentities")
	run := func(method string, body func(cmd *cobra.Command, m *mgmtClient) (any, error)) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			m, err := newMgmtClient(cmd, f)
			if err != nil {
				return err
			}
			p, err := path(m, firstArg(args))
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			var b any
			if body != nil {
				if b, err = body(cmd, m); err != nil {
					return err
				}
			}
			data, _, err := m.call(ctx, method, p, apiVersionIdentities, b)
			if err != nil {
				return err
			}
			if method == http.MethodGet && len(args) == 0 && !f.json() {
				var l struct {
					Value []struct {
						Name       string
						Location   string
						Properties struct{ PrincipalID, ClientID string }
					}
				}
				if err := json.Unmarshal(data, &l); err != nil {
					return err
				}
				t := &cli.Table{Columns: []string{"NAME", "LOCATION", "PRINCIPAL ID", "CLIENT ID"}}
				for _, x := range l.Value {
					t.Rows = append(t.Rows, []string{x.Name, x.Location, x.Properties.PrincipalID, x.Properties.ClientID})
				}
				return t.Write(cmd.OutOrStdout())
			}
			return writeIndented(cmd, data)
		}
	}
	var location string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a user-assigned identity (a principal role assignments can name)",
		Args:  cobra.ExactArgs(1),
		RunE: run(http.MethodPut, func(cmd *cobra.Command, m *mgmtClient) (any, error) {
			loc := location
			if loc == "" {
				ctx, cancel := f.context(cmd)
				defer cancel()
				var err error
				if loc, err = m.c.ResourceGroupLocation(ctx); err != nil {
					return nil, err
				}
			}
			return map[string]any{"location": loc}, nil
		}),
	}
	create.Flags().StringVar(&location, "location", "", "location (default: the resource group's)")
	var yes bool
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a user-assigned identity and its role assignments",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			return confirm(cmd, yes, "Deleting identity "+args[0])
		},
		RunE: run(http.MethodDelete, nil),
	}
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.AddCommand(create,
		&cobra.Command{Use: "list", Short: "List the user-assigned identities of the resource group", Args: cobra.NoArgs, RunE: run(http.MethodGet, nil)},
		&cobra.Command{Use: "show NAME", Short: "Show a user-assigned identity", Args: cobra.ExactArgs(1), RunE: run(http.MethodGet, nil)},
		del)
	return cmd
}
