package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"custos/internal/server"
)

// addServerCommands registers `custos serve`. Owned by the server work area.
func addServerCommands(root *cobra.Command) {
	root.AddCommand(newServeCmd())
}

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Custos server",
		Long: `Run the Custos server over HTTPS.

The first start creates the data directory with a local CA, a server
certificate, the platform key, the catalog (one tenant, a "default"
subscription, resource group and workspace) and a bootstrap admin service
principal whose credentials are written to <data-dir>/admin.json (mode 0600).

Settings come from defaults, then the YAML file named by --config, then
CUSTOS_* environment variables, then flags; see docs/configuration.md.
SIGHUP reloads the TLS certificate; SIGTERM or SIGINT shut down gracefully.`,
		Args: cobra.NoArgs,
	}
	fs := cmd.Flags()
	fs.String(server.ConfigFileSetting.Flag, "", server.ConfigFileSetting.Usage+" (env "+server.ConfigFileSetting.Env+")")
	for _, s := range server.Settings() {
		fs.String(s.Flag, "", fmt.Sprintf("%s (env %s, default %s)", s.Usage, s.Env, s.Default))
		if s.Bool {
			fs.Lookup(s.Flag).NoOptDefVal = "true"
		}
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		flags := map[string]string{}
		for _, s := range server.Settings() {
			if fs.Changed(s.Flag) {
				v, _ := fs.GetString(s.Flag)
				flags[s.Flag] = v
			}
		}
		file, _ := fs.GetString(server.ConfigFileSetting.Flag)
		if !fs.Changed(server.ConfigFileSetting.Flag) {
			file = os.Getenv(server.ConfigFileSetting.Env)
		}
		cfg, err := server.LoadConfig(server.LoadOptions{File: file, Flags: flags})
		if err != nil {
			return err
		}
		log, err := cfg.NewLogger(cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		srv, err := server.New(ctx, server.Options{Config: cfg, Logger: log})
		if err != nil {
			return err
		}
		return srv.Run(ctx)
	}
	return cmd
}
