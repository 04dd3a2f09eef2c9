package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newWorkspaceCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "workspace",
		Aliases: []string{"workspaces", "ws"},
		Short:   "List, create, show and delete Log Analytics workspaces",
	}
	f.register(cmd)
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List the workspaces of the resource group",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				ctx, cancel := f.context(cmd)
				defer cancel()
				ws, err := c.ListWorkspaces(ctx)
				if err != nil {
					return err
				}
				if f.json() {
					return writeRawList(cmd, ws, func(w cli.Workspace) []byte { return w.Raw })
				}
				t := &cli.Table{Columns: []string{"NAME", "CUSTOMER ID", "LOCATION", "RETENTION", "STATE"}}
				for _, w := range ws {
					t.Rows = append(t.Rows, []string{w.Name, w.Properties.CustomerID, w.Location, days(w.Properties.RetentionInDays), w.Properties.ProvisioningState})
				}
				return t.Write(cmd.OutOrStdout())
			},
		},
		newWorkspaceShowCmd(f),
		newWorkspaceCreateCmd(f),
		newWorkspaceDeleteCmd(f),
	)
	return cmd
}

func newWorkspaceShowCmd(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show [NAME]",
		Short: "Show a workspace (default: the configured one)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			name := firstArg(args)
			if name == "" {
				name = c.Config().WorkspaceName
			}
			if name == "" {
				return fmt.Errorf("%w: name a workspace", cli.ErrNoConfig)
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			w, err := c.GetWorkspace(ctx, name)
			if err != nil {
				return err
			}
			return writeWorkspace(cmd, f, w)
		},
	}
}

func newWorkspaceCreateCmd(f *clientFlags) *cobra.Command {
	var (
		location  string
		retention int
		tags      []string
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Create or update a workspace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			tagMap, err := parseTags(tags)
			if err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			if location == "" {
				if location, err = c.ResourceGroupLocation(ctx); err != nil {
					return err
				}
			}
			w, err := c.PutWorkspace(ctx, args[0], cli.WorkspaceSpec{Location: location, RetentionInDays: retention, Tags: tagMap})
			if err != nil {
				return err
			}
			return writeWorkspace(cmd, f, w)
		},
	}
	cmd.Flags().StringVar(&location, "location", "", "location (default: the resource group's)")
	cmd.Flags().IntVar(&retention, "retention-days", 0, "data retention in days, 30-730 (default: the server's, 30)")
	cmd.Flags().StringArrayVar(&tags, "tag", nil, "tag KEY=VALUE (repeatable)")
	return cmd
}

func newWorkspaceDeleteCmd(f *clientFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a workspace and all of its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if err := confirm(cmd, yes, fmt.Sprintf("deleting workspace %q and all of its data", args[0])); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			if err := c.DeleteWorkspace(ctx, args[0]); err != nil {
				return err
			}
			return writeDeleted(cmd, f, "workspace", args[0], c.WorkspaceResourceID(args[0]))
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func writeWorkspace(cmd *cobra.Command, f *clientFlags, w cli.Workspace) error {
	if f.json() {
		return cli.WriteRawJSON(cmd.OutOrStdout(), w.Raw)
	}
	p := w.Properties
	fields := [][2]string{
		{"Name", w.Name},
		{"ID", w.ID},
		{"Customer ID", p.CustomerID},
		{"Location", w.Location},
		{"Retention", days(p.RetentionInDays)},
		{"Ingestion access", p.PublicNetworkAccessForIngestion},
		{"Query access", p.PublicNetworkAccessForQuery},
		{"State", p.ProvisioningState},
	}
	if v := p.Features.EnableLogAccessUsingOnlyResourcePermissions; v != nil {
		mode := "workspace or resource permissions"
		if *v {
			mode = "resource permissions only"
		}
		fields = append(fields, [2]string{"Access control", mode})
	}
	if len(w.Tags) > 0 {
		fields = append(fields, [2]string{"Tags", formatTags(w.Tags)})
	}
	return cli.WriteFields(cmd.OutOrStdout(), fields)
}

func writeDeleted(cmd *cobra.Command, f *clientFlags, kind, name, id string) error {
	if f.json() {
		return cli.WriteJSON(cmd.OutOrStdout(), map[string]string{"deleted": id})
	}
	_, err := fmt.Fprintf(cmd.OutOrStdout(), "deleted %s %s\n", kind, name)
	return err
}

// writeRawList prints list items as one JSON object {"value":[...]}, the
// shape of an ARM list response.
func writeRawList[T any](cmd *cobra.Command, items []T, raw func(T) []byte) error {
	var b strings.Builder
	b.WriteString(`{"value":[`)
	for i, it := range items {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(raw(it))
	}
	b.WriteString("]}")
	return cli.WriteRawJSON(cmd.OutOrStdout(), []byte(b.String()))
}

func days(n int) string {
	if n == 0 {
		return ""
	}
	return strconv.Itoa(n) + " days"
}

func parseTags(tags []string) (map[string]string, error) {
	if len(tags) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("tag %q: want KEY=VALUE", t)
		}
		m[strings.TrimSpace(k)] = v
	}
	return m, nil
}

func formatTags(tags map[string]string) string {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + tags[k]
	}
	return strings.Join(parts, ", ")
}
