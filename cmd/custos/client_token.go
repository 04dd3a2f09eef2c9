package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newTokenCmd() *cobra.Command {
	var f clientFlags
	var scope string
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print an access token for the configured service principal (for scripts)",
		Long: `Print an access token from the Custos token service to stdout, for scripts:

  curl -H "Authorization: Bearer $(custos token --scope query)" ...

--scope takes a full scope ("https://api.loganalytics.io/.default") or one of
the aliases management (arm), query and ingestion (ingest). With -o json the
token is printed with its expiry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := f.client(cmd)
			if err != nil {
				return err
			}
			ctx, cancel := f.context(cmd)
			defer cancel()
			tok, err := c.Token(ctx, scope)
			if err != nil {
				return err
			}
			if f.json() {
				return cli.WriteJSON(cmd.OutOrStdout(), map[string]any{
					"accessToken": tok.Token, "expiresOn": tok.ExpiresOn.UTC().Format(time.RFC3339),
					"scope": cli.ResolveScope(scope), "tokenType": "Bearer",
				})
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), tok.Token)
			return err
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&scope, "scope", "management", "scope or alias: management, query, ingestion")
	return cmd
}
