package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

func newLoginCmd() *cobra.Command {
	var endpoint, tenant, caFile, dataDir string
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Sign in as a user (device code flow) and keep a refreshable token for the other verbs",
		Long: `custos login starts the device code flow: it prints a URL and a code; open the URL in a
browser, enter the code and sign in with your user name, password and (if enrolled) one-time
code. The refresh token is stored in the user config directory (custos/login.json, mode 0600)
and rotated on every use; verbs run without a service principal (no client ID and secret in
flags, environment or admin.json) then act as you. custos logout removes it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f := &clientFlags{dataDir: dataDir, endpoint: endpoint, tenant: tenant, caFile: caFile, output: outputTable}
			cfg, err := f.config(cmd)
			if err != nil {
				return err
			}
			if cfg.Endpoint == "" || cfg.TenantID == "" {
				return fmt.Errorf("%w: pass --endpoint and --tenant", cli.ErrNoConfig)
			}
			hc, err := cli.NewHTTPClient(cfg.CAFile)
			if err != nil {
				return err
			}
			ctx, stop := f.signalContext(cmd)
			defer stop()
			l, err := cli.DeviceLogin(ctx, hc, cfg.Endpoint, cfg.TenantID, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			l.CAFile = cfg.CAFile
			path, err := cli.DefaultLoginPath()
			if err != nil {
				return err
			}
			if err := cli.SaveLogin(path, l); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed in; token stored in %s\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "Custos server URL, https://host:port (env "+cli.EnvEndpoint+")")
	cmd.Flags().StringVar(&tenant, "tenant", "", "tenant ID (env "+cli.EnvTenant+")")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "PEM file of the CA to trust (env "+cli.EnvCAFile+")")
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "server data directory whose admin.json names endpoint, tenant and CA")
	return cmd
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "logout",
		Short: "Remove the token stored by custos login",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			path, err := cli.DefaultLoginPath()
			if err != nil {
				return err
			}
			if err := os.Remove(path); errors.Is(err, os.ErrNotExist) {
				fmt.Fprintln(cmd.OutOrStdout(), "not logged in")
				return nil
			} else if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "logged out (%s removed at %s)\n", path, time.Now().UTC().Format(time.RFC3339))
			return nil
		},
	}
}
