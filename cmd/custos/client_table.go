package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newTableCmd() *cobra.Command {
	f := &clientFlags{}
	var workspace string
	cmd := &cobra.Command{
		Use:     "table",
		Aliases: []string{"tables"},
		Short:   "List, create, show and delete the tables of a workspace",
	}
	f.register(cmd)
	cmd.PersistentFlags().StringVar(&workspace, "workspace", "", "workspace name (default: the configured one)")
	cmd.AddCommand(
		&cobra.Command{
			Use:   "list",
			Short: "List the tables of a workspace",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				ctx, cancel := f.context(cmd)
				defer cancel()
				tables, err := c.ListTables(ctx, workspace)
				if err != nil {
					return err
				}
				if f.json() {
					return writeRawList(cmd, tables, func(t cli.TableResource) []byte { return t.Raw })
				}
				out := &cli.Table{Columns: []string{"NAME", "TYPE", "PLAN", "RETENTION", "TOTAL RETENTION", "COLUMNS"}}
				for _, t := range tables {
					p := t.Properties
					out.Rows = append(out.Rows, []string{t.Name, p.Schema.TableType, p.Plan, days(p.RetentionInDays), days(p.TotalRetentionInDays),
						strconv.Itoa(len(p.Schema.Columns) + len(p.Schema.StandardColumns))})
				}
				return out.Write(cmd.OutOrStdout())
			},
		},
		&cobra.Command{
			Use:   "show NAME",
			Short: "Show a table and its columns",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				ctx, cancel := f.context(cmd)
				defer cancel()
				t, err := c.GetTable(ctx, workspace, args[0])
				if err != nil {
					return err
				}
				return writeTable(cmd, f, t)
			},
		},
		newTableCreateCmd(f, &workspace),
		newTableDeleteCmd(f, &workspace),
	)
	return cmd
}

func newTableCreateCmd(f *clientFlags, workspace *string) *cobra.Command {
	var (
		columns        []string
		file           string
		retention      int
		totalRetention int
		plan           string
	)
	cmd := &cobra.Command{
		Use:   "create NAME (--column Name:type ... | -f schema.json)",
		Short: "Create or update a table",
		Long: `Create or update a table. Give the schema as repeated --column Name:type[:description]
flags or as a JSON file (-f; "-" reads stdin) holding an ARM table body, a schema object
{"columns":[...]} or a bare column list [{"name":"TimeGenerated","type":"datetime"}, ...].
Column types: ` + cli.ColumnTypeNames + `. Custom tables end in _CL and need a
TimeGenerated datetime column; adding columns later is allowed, changing a type is not.`,
		Example: `  custos table create Orders_CL --column TimeGenerated:datetime --column Customer:string --column Amount:real
  custos table create Orders_CL -f orders-schema.json --retention-days 90`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var spec cli.TableSpec
			switch {
			case file != "" && len(columns) > 0:
				return fmt.Errorf("give the schema either with --column or with -f, not both")
			case file != "":
				data, err := readInput(cmd, file)
				if err != nil {
					return err
				}
				if spec, err = cli.ParseSchemaFile(data); err != nil {
					return err
				}
			case len(columns) > 0:
				cols, err := cli.ParseColumnFlags(columns)
				if err != nil {
					return err
				}
				spec.Columns = cols
			default:
				return fmt.Errorf("no schema: pass --column Name:type (repeatable) or -f schema.json")
			}
			if cmd.Flags().Changed("retention-days") {
				spec.RetentionInDays = &retention
			}
			if cmd.Flags().Changed("total-retention-days") {
				spec.TotalRetentionInDays = &totalRetention
			}
			if plan != "" {
				spec.Plan = plan
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			t, err := c.PutTable(ctx, *workspace, args[0], spec)
			if err != nil {
				return err
			}
			return writeTable(cmd, f, t)
		},
	}
	cmd.Flags().StringArrayVar(&columns, "column", nil, "column Name:type[:description] (repeatable)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "schema JSON file (- for stdin)")
	cmd.Flags().IntVar(&retention, "retention-days", 0, "interactive retention in days (-1: the workspace's)")
	cmd.Flags().IntVar(&totalRetention, "total-retention-days", 0, "total retention in days (-1: same as retention)")
	cmd.Flags().StringVar(&plan, "plan", "", "table plan: Analytics or Basic")
	return cmd
}

func newTableDeleteCmd(f *clientFlags, workspace *string) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a custom table and its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if err := confirm(cmd, yes, fmt.Sprintf("deleting table %q and its data", args[0])); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			if err := c.DeleteTable(ctx, *workspace, args[0]); err != nil {
				return err
			}
			return writeDeleted(cmd, f, "table", args[0], args[0])
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func writeTable(cmd *cobra.Command, f *clientFlags, t cli.TableResource) error {
	if f.json() {
		return cli.WriteRawJSON(cmd.OutOrStdout(), t.Raw)
	}
	p := t.Properties
	fields := [][2]string{
		{"Name", t.Name},
		{"Type", p.Schema.TableType},
		{"Plan", p.Plan},
		{"Retention", days(p.RetentionInDays)},
		{"Total retention", days(p.TotalRetentionInDays)},
	}
	if p.Schema.Description != "" {
		fields = append(fields, [2]string{"Description", p.Schema.Description})
	}
	if p.ProvisioningState != "" {
		fields = append(fields, [2]string{"State", p.ProvisioningState})
	}
	w := cmd.OutOrStdout()
	if err := cli.WriteFields(w, fields); err != nil {
		return err
	}
	fmt.Fprintln(w)
	cols := &cli.Table{Columns: []string{"COLUMN", "TYPE", "DESCRIPTION"}}
	for _, c := range p.Schema.StandardColumns {
		cols.Rows = append(cols.Rows, []string{c.Name, c.Type, c.Description})
	}
	for _, c := range p.Schema.Columns {
		cols.Rows = append(cols.Rows, []string{c.Name, c.Type, c.Description})
	}
	return cols.Write(w)
}

// maxInputFileBytes bounds a schema or rule file.
const maxInputFileBytes = 16 << 20

// readInput reads a small input file, or stdin for "-".
func readInput(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "-" {
		return readAllLimited(cmd.InOrStdin(), "stdin")
	}
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return readAllLimited(fh, path)
}
