package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newDCRCmd() *cobra.Command {
	f := &clientFlags{}
	cmd := &cobra.Command{
		Use:     "dcr",
		Aliases: []string{"dcrs"},
		Short:   "Create, list, show and delete data collection rules",
	}
	f.register(cmd)
	cmd.AddCommand(
		newDCRCreateCmd(f),
		&cobra.Command{
			Use:   "list",
			Short: "List the data collection rules of the resource group",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				ctx, cancel := f.context(cmd)
				defer cancel()
				rules, err := c.ListDCRs(ctx)
				if err != nil {
					return err
				}
				if f.json() {
					return writeRawList(cmd, rules, func(d cli.DCR) []byte { return d.Raw })
				}
				t := &cli.Table{Columns: []string{"NAME", "IMMUTABLE ID", "KIND", "STREAMS", "LOCATION"}}
				for _, d := range rules {
					t.Rows = append(t.Rows, []string{d.Name, d.Properties.ImmutableID, d.Kind, strings.Join(dcrStreams(d), ", "), d.Location})
				}
				return t.Write(cmd.OutOrStdout())
			},
		},
		&cobra.Command{
			Use:   "show NAME",
			Short: "Show a data collection rule",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, err := f.client(cmd)
				if err != nil {
					return err
				}
				ctx, cancel := f.context(cmd)
				defer cancel()
				d, err := c.GetDCR(ctx, args[0])
				if err != nil {
					return err
				}
				return writeDCR(cmd, f, d)
			},
		},
		newDCRDeleteCmd(f),
	)
	return cmd
}

func newDCRCreateCmd(f *clientFlags) *cobra.Command {
	var file, location string
	cmd := &cobra.Command{
		Use:   "create [NAME] -f rule.json",
		Short: "Create or update a data collection rule from its ARM JSON",
		Long: `Create or update a data collection rule from a JSON file ("-" reads stdin) in the
ARM shape: {"location":..., "kind":"Direct", "properties":{"streamDeclarations":...,
"destinations":{"logAnalytics":[...]}, "dataFlows":[...]}}. NAME defaults to the file's
"name". The server validates the rule (streams, destinations, output tables, and that
transformKql compiles) and assigns its immutableId, which ingestion uses.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if file == "" {
				return fmt.Errorf("no rule: pass -f rule.json")
			}
			body, err := readInput(cmd, file)
			if err != nil {
				return err
			}
			name := firstArg(args)
			if name == "" {
				var doc struct {
					Name string `json:"name"`
				}
				_ = json.Unmarshal(body, &doc) // malformed bodies are reported by PutDCR
				name = doc.Name
			}
			if name == "" {
				return fmt.Errorf("no rule name: pass NAME or set \"name\" in the file")
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			if location == "" && !hasKey(body, "location") {
				if location, err = c.ResourceGroupLocation(ctx); err != nil {
					return err
				}
			}
			d, err := c.PutDCR(ctx, name, body, location)
			if err != nil {
				return err
			}
			return writeDCR(cmd, f, d)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "rule JSON file (- for stdin)")
	cmd.Flags().StringVar(&location, "location", "", "location when the file has none (default: the resource group's)")
	return cmd
}

func newDCRDeleteCmd(f *clientFlags) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a data collection rule",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(f.output); err != nil {
				return err
			}
			if err := confirm(cmd, yes, fmt.Sprintf("deleting data collection rule %q", args[0])); err != nil {
				return err
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			if err := c.DeleteDCR(ctx, args[0]); err != nil {
				return err
			}
			return writeDeleted(cmd, f, "data collection rule", args[0], c.DCRResourceID(args[0]))
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func writeDCR(cmd *cobra.Command, f *clientFlags, d cli.DCR) error {
	if f.json() {
		return cli.WriteRawJSON(cmd.OutOrStdout(), d.Raw)
	}
	p := d.Properties
	fields := [][2]string{
		{"Name", d.Name},
		{"ID", d.ID},
		{"Immutable ID", p.ImmutableID},
		{"Kind", d.Kind},
		{"Location", d.Location},
		{"Ingestion endpoint", p.Endpoints.LogsIngestion},
		{"Streams", strings.Join(dcrStreams(d), ", ")},
	}
	if p.Description != "" {
		fields = append(fields, [2]string{"Description", p.Description})
	}
	if p.ProvisioningState != "" {
		fields = append(fields, [2]string{"State", p.ProvisioningState})
	}
	w := cmd.OutOrStdout()
	if err := cli.WriteFields(w, fields); err != nil {
		return err
	}
	if len(p.DataFlows) == 0 {
		return nil
	}
	dest := map[string]string{}
	for _, la := range p.Destinations.LogAnalytics {
		dest[la.Name] = la.WorkspaceResourceID
	}
	fmt.Fprintln(w)
	t := &cli.Table{Columns: []string{"STREAMS", "OUTPUT", "DESTINATIONS", "TRANSFORM"}}
	for _, df := range p.DataFlows {
		var ds []string
		for _, n := range df.Destinations {
			if id, ok := dest[n]; ok {
				n += " (" + lastSegment(id) + ")"
			}
			ds = append(ds, n)
		}
		t.Rows = append(t.Rows, []string{strings.Join(df.Streams, ", "), df.OutputStream, strings.Join(ds, ", "), df.TransformKQL})
	}
	return t.Write(w)
}

func dcrStreams(d cli.DCR) []string {
	names := make([]string, 0, len(d.Properties.StreamDeclarations))
	for n := range d.Properties.StreamDeclarations {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lastSegment(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// hasKey reports whether body is a JSON object with key at the top level.
func hasKey(body []byte, key string) bool {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) != nil {
		return false
	}
	_, ok := doc[key]
	return ok
}
