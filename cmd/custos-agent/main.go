// Command custos-agent collects logs and metrics on a Linux machine as its
// data collection rules ask and delivers them to Custos's Logs Ingestion API.
// It talks to Custos only over HTTPS; it never links the server's storage,
// query engine or KQL packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/agent"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "custos-agent:", err)
		os.Exit(1)
	}
}

const defaultConfig = "/etc/custos-agent/config.yaml"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "custos-agent",
		Short:         "Collect logs and metrics for Custos as data collection rules ask",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newStatusCmd(), newVersionCmd())
	return root
}

func newRunCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent in the foreground (as systemd starts it)",
		Long: `Run the agent: read the data collection rules from the configured
directory (re-read every dcr.pollInterval), run the syslog, performance counter,
log file and Heartbeat sources they ask for, queue batches on disk and deliver
them to the Logs Ingestion API. SIGTERM or SIGINT stop it after flushing what
is in memory to the disk queue; undelivered batches are sent after the next
start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(cfgPath)
			if err != nil {
				return err
			}
			log := newLogger(cmd.ErrOrStderr(), cfg.LogLevel)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			a, err := agent.New(agent.Options{Config: cfg, Logger: log})
			if err != nil {
				return err
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", defaultConfig, "configuration file (YAML)")
	return cmd
}

func newStatusCmd() *cobra.Command {
	var cfgPath string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the agent runs, its rules, queue depth, last send and errors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := agent.LoadConfig(cfgPath)
			if err != nil {
				return err
			}
			st, err := agent.ReadStatus(cfg.StatusPath())
			if err != nil {
				return err
			}
			if asJSON {
				b, err := os.ReadFile(cfg.StatusPath())
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			agent.PrintStatus(cmd.OutOrStdout(), st, time.Now())
			if !st.Running(time.Now()) {
				return errors.New("the agent is not running")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", defaultConfig, "configuration file (YAML)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the status file as JSON")
	return cmd
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agent version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "custos-agent", agent.Version)
		},
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
