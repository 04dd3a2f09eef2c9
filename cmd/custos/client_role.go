package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newRoleCmd() *cobra.Command {
	f := &clientFlags{}
	var scope string
	cmd := &cobra.Command{
		Use:   "role",
		Short: "List role definitions; create, list and delete role assignments",
		Long: `Role-based access control, as in Azure (Microsoft.Authorization). A role assignment
grants a role to a principal at a scope: "/", a subscription, a resource group or a
resource, and everything below it. --scope defaults to the configured resource group.`,
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&scope, "scope", "", `scope: "/" or an ARM ID (default: the configured resource group)`)
	scopeOf := func(c *cli.Client) (string, error) {
		if scope != "" {
			return cli.CleanScope(scope)
		}
		cfg := c.Config()
		if cfg.SubscriptionID == "" || cfg.ResourceGroup == "" {
			return "", fmt.Errorf("%w: pass --scope, or set subscriptionId and resourceGroup", cli.ErrNoConfig)
		}
		return c.ResourceGroupID(), nil
	}

	definition := &cobra.Command{Use: "definition", Aliases: []string{"definitions"}, Short: "Role definitions"}
	definition.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the role definitions usable at the scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, s, err := clientAtScope(cmd, f, scopeOf)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			defs, err := c.ListRoleDefinitions(ctx, s)
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawList(cmd, defs, func(d cli.RoleDefinition) []byte { return d.Raw })
			}
			t := &cli.Table{Columns: []string{"NAME", "ID", "TYPE", "DESCRIPTION"}}
			for _, d := range defs {
				t.Rows = append(t.Rows, []string{d.Properties.RoleName, d.Name, d.Properties.Type, d.Properties.Description})
			}
			return t.Write(cmd.OutOrStdout())
		},
	})

	assignment := &cobra.Command{Use: "assignment", Aliases: []string{"assignments"}, Short: "Role assignments"}
	assignment.AddCommand(newRoleAssignmentCreateCmd(f, scopeOf), newRoleAssignmentListCmd(f, scopeOf), newRoleAssignmentDeleteCmd(f, scopeOf))
	cmd.AddCommand(definition, assignment)
	return cmd
}

func newRoleAssignmentCreateCmd(f *clientFlags, scopeOf func(*cli.Client) (string, error)) *cobra.Command {
	var role, assignee, assigneeType, description string
	cmd := &cobra.Command{
		Use:   "create --role NAME|ID --assignee self|OBJECT_ID",
		Short: "Assign a role to a principal at the scope",
		Example: `  # let the configured principal send logs to every rule of its resource group
  custos role assignment create --role "Monitoring Metrics Publisher" --assignee self
  custos role assignment create --role Reader --assignee 0b1f... --assignee-principal-type Group --scope /subscriptions/...`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role == "" || assignee == "" {
				return fmt.Errorf("pass --role and --assignee")
			}
			c, s, err := clientAtScope(cmd, f, scopeOf)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			principal, ptype := assignee, assigneeType
			if strings.EqualFold(assignee, "self") {
				if principal, err = c.SelfObjectID(ctx); err != nil {
					return err
				}
				if ptype == "" {
					ptype = "ServicePrincipal" // client credentials sign in service principals only
				}
			}
			def, err := c.ResolveRole(ctx, s, role)
			if err != nil {
				return err
			}
			ra, err := c.CreateRoleAssignment(ctx, cli.RoleAssignmentSpec{
				Scope: s, RoleDefinitionID: def.ID, PrincipalID: principal, PrincipalType: ptype, Description: description,
			})
			if err != nil {
				return err
			}
			if f.json() {
				return cli.WriteRawJSON(cmd.OutOrStdout(), ra.Raw)
			}
			return cli.WriteFields(cmd.OutOrStdout(), [][2]string{
				{"Name", ra.Name},
				{"Role", def.Properties.RoleName},
				{"Principal", ra.Properties.PrincipalID},
				{"Principal type", ra.Properties.PrincipalType},
				{"Scope", ra.Properties.Scope},
				{"ID", ra.ID},
			})
		},
	}
	cmd.Flags().StringVar(&role, "role", "", `role name ("Monitoring Metrics Publisher") or ID`)
	cmd.Flags().StringVar(&assignee, "assignee", "", `principal object ID, or "self" for the configured principal`)
	cmd.Flags().StringVar(&assigneeType, "assignee-principal-type", "", "User, Group or ServicePrincipal")
	cmd.Flags().StringVar(&description, "description", "", "description of the assignment")
	return cmd
}

func newRoleAssignmentListCmd(f *clientFlags, scopeOf func(*cli.Client) (string, error)) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the role assignments that apply at the scope",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, s, err := clientAtScope(cmd, f, scopeOf)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			ras, err := c.ListRoleAssignments(ctx, s)
			if err != nil {
				return err
			}
			if f.json() {
				return writeRawList(cmd, ras, func(a cli.RoleAssignment) []byte { return a.Raw })
			}
			names := map[string]string{}
			if defs, err := c.ListRoleDefinitions(ctx, s); err == nil {
				for _, d := range defs {
					names[strings.ToLower(d.Name)] = d.Properties.RoleName
				}
			}
			t := &cli.Table{Columns: []string{"NAME", "ROLE", "PRINCIPAL", "TYPE", "SCOPE"}}
			for _, a := range ras {
				p := a.Properties
				role := names[strings.ToLower(cli.RoleGUID(p.RoleDefinitionID))]
				if role == "" {
					role = cli.RoleGUID(p.RoleDefinitionID)
				}
				t.Rows = append(t.Rows, []string{a.Name, role, p.PrincipalID, p.PrincipalType, p.Scope})
			}
			return t.Write(cmd.OutOrStdout())
		},
	}
}

func newRoleAssignmentDeleteCmd(f *clientFlags, scopeOf func(*cli.Client) (string, error)) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME|ID",
		Short: "Delete a role assignment (by its GUID name at the scope, or by its full ID)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if err := confirm(cmd, yes, fmt.Sprintf("deleting role assignment %s", args[0])); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			s := "/"
			if !strings.HasPrefix(args[0], "/") {
				if s, err = scopeOf(c); err != nil {
					return err
				}
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			if err := c.DeleteRoleAssignment(ctx, s, args[0]); err != nil {
				return err
			}
			return writeDeleted(cmd, f, "role assignment", args[0], args[0])
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// clientAtScope returns the client of a role verb and the scope it works at.
func clientAtScope(cmd *cobra.Command, f *clientFlags, scopeOf func(*cli.Client) (string, error)) (*cli.Client, string, error) {
	c, err := f.client(cmd)
	if err != nil {
		return nil, "", err
	}
	s, err := scopeOf(c)
	return c, s, err
}
