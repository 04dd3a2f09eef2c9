package main

import (
	"encoding/json"
	"net/http"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newGroupCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "group",
		Aliases: []string{"groups"},
		Short:   "Manage directory groups; role assignments to a group apply to its members, nested groups included",
	}
	f.register(cmd)
	// groupID resolves a group's display name or object ID to its object ID.
	groupID := func(cmd *cobra.Command, ref string) (string, error) {
		m, err := newMgmtClient(cmd, f)
		if err != nil {
			return "", err
		}
		ctx, cancel := f.context(cmd)
		defer cancel()
		data, _, err := m.call(ctx, http.MethodGet, directoryPath+"/groups/"+ref, apiVersionDirectory, nil)
		if err != nil {
			return "", err
		}
		var g struct{ Name string }
		if err := json.Unmarshal(data, &g); err != nil {
			return "", err
		}
		return g.Name, nil
	}
	var description string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create a group (names are unique in the tenant)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := newObjectID()
			if err != nil {
				return err
			}
			return dirCall(cmd, f, http.MethodPut, directoryPath+"/groups/"+id,
				map[string]any{"properties": map[string]string{"displayName": args[0], "description": description}}, nil)
		},
	}
	create.Flags().StringVar(&description, "description", "", "what the group is for")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the groups",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dirCall(cmd, f, http.MethodGet, directoryPath+"/groups", nil, func(data []byte) (*cli.Table, error) {
				var l dirList
				if err := json.Unmarshal(data, &l); err != nil {
					return nil, err
				}
				t := &cli.Table{Columns: []string{"OBJECT ID", "NAME", "DESCRIPTION"}}
				for _, v := range l.Value {
					var p struct{ DisplayName, Description string }
					_ = json.Unmarshal(v.Properties, &p)
					t.Rows = append(t.Rows, []string{v.Name, p.DisplayName, p.Description})
				}
				return t, nil
			})
		},
	}
	members := &cobra.Command{
		Use:   "members GROUP",
		Short: "List a group's direct members",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := groupID(cmd, args[0])
			if err != nil {
				return err
			}
			return dirCall(cmd, f, http.MethodGet, directoryPath+"/groups/"+id+"/members", nil, func(data []byte) (*cli.Table, error) {
				var l struct {
					Value []struct{ Name, PrincipalType, DisplayName string }
				}
				if err := json.Unmarshal(data, &l); err != nil {
					return nil, err
				}
				t := &cli.Table{Columns: []string{"OBJECT ID", "TYPE", "NAME"}}
				for _, v := range l.Value {
					t.Rows = append(t.Rows, []string{v.Name, v.PrincipalType, v.DisplayName})
				}
				return t, nil
			})
		},
	}
	member := func(use, short, method string) *cobra.Command {
		return &cobra.Command{
			Use:   use + " GROUP MEMBER_OBJECT_ID",
			Short: short,
			Args:  cobra.ExactArgs(2),
			RunE: func(cmd *cobra.Command, args []string) error {
				id, err := groupID(cmd, args[0])
				if err != nil {
					return err
				}
				member := args[1]
				if method == http.MethodPut {
					// A group may be named instead of its ID.
					if gid, err := groupID(cmd, member); err == nil {
						member = gid
					}
				}
				return dirCall(cmd, f, method, directoryPath+"/groups/"+id+"/members/"+member, nil, nil)
			},
		}
	}
	var yes bool
	del := &cobra.Command{
		Use:   "delete GROUP",
		Short: "Delete a group with its memberships and role assignments",
		Args:  cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			return confirm(cmd, yes, "Deleting group "+args[0])
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := groupID(cmd, args[0])
			if err != nil {
				return err
			}
			return dirCall(cmd, f, http.MethodDelete, directoryPath+"/groups/"+id, nil, nil)
		},
	}
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.AddCommand(create, list, members,
		member("add-member", "Add a user, service principal, managed identity or group to a group", http.MethodPut),
		member("remove-member", "Remove a direct member from a group", http.MethodDelete), del)
	return cmd
}
