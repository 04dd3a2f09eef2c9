// Command custos is the Custos server and its command-line client in one binary.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "custos",
		Short:         "Custos: self-hosted, security-first monitoring that speaks Azure Monitor's APIs",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	addServerCommands(root) // serve.go: serve
	addClientCommands(root) // client*.go: version, token, workspace, table, dcr, query, ingest
	return root
}
