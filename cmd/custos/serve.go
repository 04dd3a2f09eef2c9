package main

import "github.com/spf13/cobra"

// addServerCommands registers `custos serve`. Owned by the server work area.
func addServerCommands(root *cobra.Command) {}
