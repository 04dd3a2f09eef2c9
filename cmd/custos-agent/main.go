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
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/agent"
)

func main() {
	// One P unless GOMAXPROCS says otherwise: the agent's work fits in one
	// core, and with more Ps every wake-up of a collector also woke a second
	// thread to spin in the scheduler (epoll_wait, work stealing) — over half
	// of the agent's CPU at 1,000 syslog events/s (bench/agent).
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
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
	root.AddCommand(newRunCmd(), newEnrollCmd(), newStatusCmd(), newVersionCmd())
	return root
}

func newRunCmd() *cobra.Command {
	var cfgPath, cpuProfile, memProfile string
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent in the foreground (as systemd starts it)",
		Long: `Run the agent: read the data collection rules from the configured
directory (re-read every dcr.pollInterval), run the syslog, performance counter,
log file and Heartbeat sources they ask for (and, with kubernetes.enabled, the
container log and kubelet metrics collectors of ContainerInsights extensions),
queue batches on disk and deliver them to the Logs Ingestion API. SIGTERM or SIGINT stop it after flushing what
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
			if cpuProfile != "" {
				f, err := os.OpenFile(cpuProfile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
				if err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("cpu profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			if memProfile != "" {
				defer func() {
					f, err := os.OpenFile(memProfile, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
					if err != nil {
						log.Warn("heap profile not written", slog.Any("error", err))
						return
					}
					defer f.Close()
					if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
						log.Warn("heap profile not written", slog.Any("error", err))
					}
				}()
			}
			return a.Run(ctx)
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", defaultConfig, "configuration file (YAML)")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write a Go CPU profile to this file until the agent stops (diagnostics; bench/agent uses it)")
	cmd.Flags().StringVar(&memProfile, "memprofile", "", "write a Go heap profile (allocations and in-use memory) to this file when the agent stops (diagnostics)")
	return cmd
}

func newEnrollCmd() *cobra.Command {
	var cfgPath, endpoint, caFile, token, tokenFile, name, dir, cluster, distribution, k8sVersion string
	var force bool
	cmd := &cobra.Command{
		Use:   "enroll --token TOKEN [--endpoint URL] [--ca-file F]",
		Short: "Enroll this machine with Custos (once) and receive its managed identity",
		Long: `Enroll this machine: create its key pair locally (the private key is
written 0600 and never sent), present the one-time enrollment token from
'custos machine enroll-token' and the public key to Custos, and store the
machine's resource ID and system-assigned managed identity next to the key.
'custos-agent run' then authenticates with signed assertions and applies the
data collection rules associated with the machine. Endpoint and CA file come
from the configuration file unless given as flags; the token may also come
from the environment variable CUSTOS_ENROLLMENT_TOKEN. Re-enrolling needs
--force.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var cfg agent.Config
			if c, err := agent.LoadConfig(cfgPath); err == nil {
				cfg = c
			} else if cmd.Flags().Changed("config") || endpoint == "" {
				return err
			} else {
				cfg.StateDir = agent.DefaultStateDir
			}
			if endpoint != "" {
				cfg.Endpoint = endpoint
			}
			if caFile != "" {
				cfg.CAFile = caFile
			}
			if dir == "" {
				dir = cfg.IdentityPath()
			}
			if token == "" && tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("enrollment token file: %w", err)
				}
				token = strings.TrimSpace(string(b))
			}
			if token == "" {
				token = os.Getenv("CUSTOS_ENROLLMENT_TOKEN")
			}
			if cluster != "" {
				if name != "" {
					return errors.New("--name and --cluster exclude each other")
				}
				name = cluster
			}
			if token == "" {
				return errors.New("an enrollment token is required (--token or CUSTOS_ENROLLMENT_TOKEN); create one with 'custos machine enroll-token'")
			}
			id, err := agent.Enroll(cmd.Context(), agent.EnrollOptions{Endpoint: cfg.Endpoint, CAFile: cfg.CAFile, Token: token,
				Dir: dir, Name: name, Force: force, Cluster: cluster != "", Distribution: distribution, KubernetesVersion: k8sVersion})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "enrolled as %s\n  managed identity: clientId %s, principalId %s\n  key: %s (stays on this machine)\n",
				id.ID, id.ClientID, id.PrincipalID, dir)
			if cluster != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "store %s as the Secret custos-agent-identity (docs/containers.md), grant the identity 'Monitoring Metrics Publisher' on the rules, associate them with the cluster, then deploy the agent\n", dir)
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "grant it 'Monitoring Metrics Publisher' on the rules it sends to, associate rules with it, then start 'custos-agent run'\n")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", defaultConfig, "configuration file (YAML); optional when --endpoint is given")
	f.StringVar(&endpoint, "endpoint", "", "Custos server URL, https://host:port")
	f.StringVar(&caFile, "ca-file", "", "PEM file of the CA to trust instead of the system roots")
	f.StringVar(&token, "token", "", "one-time enrollment token (prefer CUSTOS_ENROLLMENT_TOKEN: a flag is visible to other users)")
	f.StringVar(&name, "name", "", "machine resource name (default: the short host name)")
	f.StringVar(&dir, "dir", "", "identity directory (default: identityDir of the configuration, or <stateDir>/identity)")
	f.BoolVar(&force, "force", false, "replace an existing identity (re-enroll)")
	f.StringVar(&tokenFile, "token-file", "", "read the one-time enrollment token from this file (e.g. a mounted Secret)")
	f.StringVar(&cluster, "cluster", "", "enroll a Kubernetes cluster of this name (Microsoft.Kubernetes/connectedClusters; token from 'custos cluster enroll-token') instead of this machine")
	f.StringVar(&distribution, "distribution", "", "cluster distribution reported with --cluster (e.g. k3s, kubeadm)")
	f.StringVar(&k8sVersion, "kubernetes-version", "", "Kubernetes version reported with --cluster")
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
