package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newQueryCmd() *cobra.Command {
	f := &clientFlags{}
	var (
		workspace string
		timespan  string
		file      string
		stats     bool
		wait      int
	)
	cmd := &cobra.Command{
		Use:   "query [--workspace NAME|ID] [--timespan PT1H] 'KQL'",
		Short: "Run a KQL query against a workspace",
		Long: `Run a KQL query through the Log Analytics Query API (the Azure SDK's query client).
The query is the arguments joined by spaces, or the contents of -f FILE ("-" reads
stdin). --timespan is an ISO 8601 duration (PT1H, P1D) or start/end in RFC 3339;
without it the query sees all data its own filters allow.`,
		Example: `  custos query 'Heartbeat | summarize count() by Computer'
  custos query --workspace default --timespan PT1H -o json 'Orders_CL | take 10'
  custos query -f report.kql`,
		RunE: func(cmd *cobra.Command, args []string) error {
			kql := strings.Join(args, " ")
			if file != "" {
				if kql != "" {
					return fmt.Errorf("give the query either as an argument or with -f, not both")
				}
				data, err := readInput(cmd, file)
				if err != nil {
					return err
				}
				kql = string(data)
			}
			if strings.TrimSpace(kql) == "" {
				return fmt.Errorf("no query: pass it as an argument or with -f FILE")
			}
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			wsID, err := c.ResolveWorkspaceID(ctx, workspace)
			if err != nil {
				return err
			}
			res, err := c.Query(ctx, wsID, kql, cli.QueryOptions{Timespan: timespan, Statistics: stats, WaitSeconds: wait})
			if err != nil {
				return err
			}
			switch f.output {
			case outputJSON:
				return cli.WriteJSON(cmd.OutOrStdout(), res)
			case outputCSV:
				return writeQueryCSV(cmd, res)
			}
			return writeQueryResult(cmd, res)
		},
	}
	f.register(cmd)
	f.csv = true
	cmd.PersistentFlags().Lookup("output").Usage = "output format: table, json or csv"
	cmd.Flags().StringVar(&workspace, "workspace", "", "workspace name or customer ID (default: the configured one)")
	cmd.Flags().StringVar(&timespan, "timespan", "", "time range: ISO 8601 duration (PT1H) or start/end")
	cmd.Flags().StringVarP(&file, "file", "f", "", "read the query from a file (- for stdin)")
	cmd.Flags().BoolVar(&stats, "stats", false, "print query statistics to stderr")
	cmd.Flags().IntVar(&wait, "wait", 0, "server-side timeout in seconds (max 600; default: the server's, 180)")
	return cmd
}

func writeQueryResult(cmd *cobra.Command, res cli.QueryResult) error {
	w := cmd.OutOrStdout()
	for i, t := range res.Tables {
		if len(res.Tables) > 1 {
			if i > 0 {
				fmt.Fprintln(w)
			}
			fmt.Fprintf(w, "== %s ==\n", cli.SafeText(t.Name, 100))
		}
		if err := t.TextTable().Write(w); err != nil {
			return err
		}
		if len(t.Rows) == 0 {
			fmt.Fprintln(cmd.ErrOrStderr(), "(no rows)")
		}
	}
	if len(res.Error) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: partial result: %s\n", describeRawError(res.Error))
	}
	if len(res.Statistics) > 0 {
		fmt.Fprintln(cmd.ErrOrStderr(), "statistics:")
		if err := cli.WriteRawJSON(cmd.ErrOrStderr(), res.Statistics); err != nil {
			return err
		}
	}
	return nil
}

// writeQueryCSV writes each result table as CSV with a header row (RFC 4180),
// tables separated by an empty line.
func writeQueryCSV(cmd *cobra.Command, res cli.QueryResult) error {
	w := csv.NewWriter(cmd.OutOrStdout())
	for i, t := range res.Tables {
		if i > 0 {
			w.Flush()
			fmt.Fprintln(cmd.OutOrStdout())
		}
		header := make([]string, len(t.Columns))
		for j, c := range t.Columns {
			header[j] = c.Name
		}
		if err := w.Write(header); err != nil {
			return err
		}
		for _, r := range t.Rows {
			rec := make([]string, len(t.Columns))
			for j := range rec {
				if j < len(r) {
					rec[j] = cli.FormatValue(r[j], t.Columns[j].Type)
				}
			}
			if err := w.Write(rec); err != nil {
				return err
			}
		}
	}
	w.Flush()
	if len(res.Error) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: partial result: %s\n", describeRawError(res.Error))
	}
	return w.Error()
}

// describeRawError renders a partial-error object {"code","message",...}.
func describeRawError(raw json.RawMessage) string {
	e := cli.ParseErrorResponse(200, nil, append([]byte(`{"error":`), append(raw, '}')...))
	return cli.SafeText(e.Code+": "+e.Message, 1000)
}
