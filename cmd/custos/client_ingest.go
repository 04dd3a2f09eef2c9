package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newIngestCmd() *cobra.Command {
	f := &clientFlags{}
	var (
		dcr      string
		stream   string
		maxBytes int
		gzipped  bool
	)
	cmd := &cobra.Command{
		Use:   "ingest --dcr NAME|IMMUTABLE_ID [--stream NAME] FILE|-",
		Short: "Send log records to a data collection rule stream",
		Long: `Send log records through the Logs Ingestion API (the Azure SDK's ingestion client).
The input is a JSON array of objects or JSON lines (one object per line), from FILE or
stdin ("-"). Records are sent in order, in requests of at most 1 MB. --stream may be
left out when the rule declares exactly one stream. If a request fails, the records
before it have been accepted; the error says how many.`,
		Example: `  custos ingest --dcr orders --stream Custom-Orders orders.json
  tail -n 1000 app.jsonl | custos ingest --dcr dcr-0123456789abcdef0123456789abcdef --stream Custom-App -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if dcr == "" {
				return fmt.Errorf("no rule: pass --dcr NAME or --dcr IMMUTABLE_ID")
			}
			in, name, closeIn, err := openRecords(cmd, args[0])
			if err != nil {
				return err
			}
			defer closeIn()
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			// The input may be large: --timeout bounds each request, not the run.
			ctx, stop := f.signalContext(cmd)
			defer stop()
			rctx, cancel := context.WithTimeout(ctx, f.requestTimeout())
			ruleID, streams, err := c.ResolveDCR(rctx, dcr)
			cancel()
			if err != nil {
				return err
			}
			if stream == "" {
				switch len(streams) {
				case 1:
				case 0:
					return fmt.Errorf("pass --stream NAME: the rule's streams are not known here (it declares none, or it was given by immutable ID)")
				default:
					return fmt.Errorf("pass --stream: the rule declares %d streams (%s)", len(streams), strings.Join(streams, ", "))
				}
				stream = streams[0]
			}
			prog := newProgress(cmd.ErrOrStderr())
			start := time.Now()
			st, err := cli.SplitRecords(in, maxBytes, func(b cli.Batch) error {
				uctx, cancel := context.WithTimeout(ctx, f.requestTimeout())
				defer cancel()
				if err := c.Upload(uctx, ruleID, stream, b.Body, cli.UploadOptions{Gzip: gzipped}); err != nil {
					return fmt.Errorf("records %d-%d of %s: %w", b.First+1, b.First+b.Count, name, err)
				}
				prog.add(b.Count, len(b.Body))
				return nil
			})
			prog.done()
			if err != nil {
				if st.Records > 0 {
					return fmt.Errorf("%w\n%d records before these were accepted in %d requests; resend from record %d", err, st.Records, st.Batches, st.Records+1)
				}
				return err
			}
			if f.json() {
				return cli.WriteJSON(cmd.OutOrStdout(), map[string]any{
					"records": st.Records, "requests": st.Batches, "bytes": st.Bytes,
					"immutableId": ruleID, "stream": stream,
				})
			}
			_, err = fmt.Fprintf(cmd.OutOrStdout(), "ingested %d records in %d requests (%s) into %s of %s in %s\n",
				st.Records, st.Batches, byteSize(st.Bytes), stream, ruleID, time.Since(start).Round(time.Millisecond))
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&dcr, "dcr", "", "data collection rule name or immutable ID (dcr-...)")
	cmd.Flags().StringVar(&stream, "stream", "", "stream name, e.g. Custom-MyTable (default: the rule's only stream)")
	cmd.Flags().BoolVar(&gzipped, "gzip", false, "compress requests (saves bandwidth; the 1 MB limit still applies uncompressed)")
	cmd.Flags().IntVar(&maxBytes, "max-request-bytes", cli.MaxUploadBytes, "largest request body")
	_ = cmd.Flags().MarkHidden("max-request-bytes")
	return cmd
}

// openRecords opens the input: a file, or stdin for "-".
func openRecords(cmd *cobra.Command, arg string) (io.Reader, string, func(), error) {
	if arg == "-" {
		return bufio.NewReader(cmd.InOrStdin()), "stdin", func() {}, nil
	}
	fh, err := os.Open(arg)
	if err != nil {
		return nil, "", nil, err
	}
	return fh, arg, func() { fh.Close() }, nil
}

// progress prints a one-line counter on stderr when it is a terminal.
type progress struct {
	w        io.Writer
	on       bool
	records  int
	bytes    int64
	last     time.Time
	finished bool
}

func newProgress(w io.Writer) *progress {
	return &progress{w: w, on: isTerminal(w)}
}

func (p *progress) add(records, bytes int) {
	p.records += records
	p.bytes += int64(bytes)
	if !p.on || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\rsent %d records (%s)", p.records, byteSize(p.bytes))
}

func (p *progress) done() {
	if p.on && !p.last.IsZero() && !p.finished {
		fmt.Fprint(p.w, "\r\033[K")
	}
	p.finished = true
}

func byteSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}
