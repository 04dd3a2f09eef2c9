package main

import "github.com/spf13/cobra"

// addClientCommands registers the client verbs. Owned by the CLI work area.
func addClientCommands(root *cobra.Command) {}
