package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

// addClientCommands registers the client verbs. Owned by the CLI work area.
func addClientCommands(root *cobra.Command) {
	root.AddCommand(
		newVersionCmd(),
		newTokenCmd(),
		newWorkspaceCmd(),
		newTableCmd(),
		newDCRCmd(),
		newQueryCmd(),
		newIngestCmd(),
		newAdminCmd(),
		newRoleCmd(),
	)
	addMachineCommands(root)
	addIdentityCommands(root) // client_principal.go: principal, group, access, login, logout
	root.AddCommand(newAlertCmd())
	addProtectionCommands(root)   // client_protection.go: export, pls, saved-search
	addLogAnalyticsCommands(root) // client_loganalytics.go: la-cluster, diagnostic-setting, purge
}

// Output formats of the client verbs.
const (
	outputTable = "table"
	outputJSON  = "json"
	outputCSV   = "csv" // query only
)

// defaultTimeout bounds one client command.
const defaultTimeout = 10 * time.Minute

// clientFlags are the connection flags every client verb takes. Precedence:
// admin.json < CUSTOS_* environment < flags.
type clientFlags struct {
	dataDir       string
	endpoint      string
	tenant        string
	clientID      string
	clientSecret  string
	caFile        string
	subscription  string
	resourceGroup string
	output        string
	csv           bool // the verb also offers -o csv
	timeout       time.Duration
}

// register adds the connection flags to cmd as persistent flags, so that the
// subcommands of a verb group accept them too.
func (f *clientFlags) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&f.dataDir, "data-dir", "", "server data directory holding admin.json (env "+cli.EnvDataDir+", default ./"+cli.DefaultDataDir+")")
	fs.StringVar(&f.endpoint, "endpoint", "", "Custos server URL, https://host:port (env "+cli.EnvEndpoint+")")
	fs.StringVar(&f.tenant, "tenant", "", "tenant ID (env "+cli.EnvTenant+")")
	fs.StringVar(&f.clientID, "client-id", "", "service principal client ID (env "+cli.EnvClientID+")")
	fs.StringVar(&f.clientSecret, "client-secret", "", "service principal secret; prefer env "+cli.EnvClientSecret+": a flag is visible to other users")
	fs.StringVar(&f.caFile, "ca-file", "", "PEM file of the CA to trust, e.g. <data-dir>/tls/ca.crt (env "+cli.EnvCAFile+")")
	fs.StringVar(&f.subscription, "subscription", "", "subscription ID (env "+cli.EnvSubscription+")")
	fs.StringVar(&f.resourceGroup, "resource-group", "", "resource group name (env "+cli.EnvResourceGroup+")")
	fs.StringVarP(&f.output, "output", "o", outputTable, "output format: table or json")
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "give up after this long (ingest: per request)")
}

// adminPath returns where admin.json is looked for.
func (f *clientFlags) adminPath() string {
	dir := f.dataDir
	if dir == "" {
		dir = os.Getenv(cli.EnvDataDir)
	}
	if dir == "" {
		dir = cli.DefaultDataDir
	}
	return filepath.Join(dir, cli.AdminFileName)
}

// config loads admin.json (when present), then applies the environment, then
// the flags. The second result describes where settings were looked for.
func (f *clientFlags) config(cmd *cobra.Command) (cli.Config, error) {
	if err := f.checkOutput(); err != nil {
		return cli.Config{}, err
	}
	path := f.adminPath()
	cfg, found, err := cli.LoadFile(path)
	if err != nil {
		return cli.Config{}, err
	}
	if found && cli.InsecurePermissions(path) {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s holds a client secret and is readable by other users; run: chmod 600 %s\n", path, path)
	}
	if f.clientSecret != "" {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: --client-secret is visible to other local users (process list, shell history); prefer %s\n", cli.EnvClientSecret)
	}
	cfg = cfg.Merge(cli.FromEnv(os.Getenv)).Merge(cli.Config{
		Endpoint:       f.endpoint,
		TenantID:       f.tenant,
		ClientID:       f.clientID,
		ClientSecret:   cli.Secret(f.clientSecret),
		CAFile:         f.caFile,
		SubscriptionID: f.subscription,
		ResourceGroup:  f.resourceGroup,
	})
	if l, _, lerr := cli.StoredLogin(); !found && cfg.Endpoint == "" && lerr == nil {
		// No admin.json and no endpoint: act as the user of `custos login`.
		cfg.Endpoint, cfg.TenantID = l.Endpoint, l.TenantID
		if cfg.CAFile == "" {
			cfg.CAFile = l.CAFile
		}
	}
	if !found && cfg.Endpoint == "" {
		return cli.Config{}, fmt.Errorf("%w: %s does not exist; start the server with `custos serve` (it writes admin.json), pass --data-dir, or give --endpoint, --tenant, --client-id and %s",
			cli.ErrNoConfig, path, cli.EnvClientSecret)
	}
	return cfg, nil
}

// client returns a connected client for cmd.
func (f *clientFlags) client(cmd *cobra.Command) (*cli.Client, error) {
	cfg, err := f.config(cmd)
	if err != nil {
		return nil, err
	}
	return cli.New(cli.Options{Config: cfg})
}

// context returns the command's context, cancelled on SIGINT/SIGTERM and
// after the timeout.
func (f *clientFlags) context(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	ctx, stop := f.signalContext(cmd)
	ctx, cancel := context.WithTimeout(ctx, f.requestTimeout())
	return ctx, func() { cancel(); stop() }
}

// signalContext returns the command's context, cancelled on SIGINT/SIGTERM
// only; long-running verbs (ingest) bound each request with requestTimeout.
func (f *clientFlags) signalContext(cmd *cobra.Command) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
}

// requestTimeout is --timeout, or its default when not positive.
func (f *clientFlags) requestTimeout() time.Duration {
	if f.timeout <= 0 {
		return defaultTimeout
	}
	return f.timeout
}

func (f *clientFlags) json() bool { return f.output == outputJSON }

// checkOutput validates -o for this verb.
func (f *clientFlags) checkOutput() error {
	if f.csv && f.output == outputCSV {
		return nil
	}
	return checkOutput(f.output)
}

func checkOutput(o string) error {
	switch o {
	case outputTable, outputJSON:
		return nil
	}
	return fmt.Errorf("unknown output format %q (want %s or %s)", o, outputTable, outputJSON)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// errNotConfirmed is returned when a destructive verb is not confirmed.
var errNotConfirmed = errors.New("not confirmed")

// confirm asks before a destructive action. --yes skips the question; without
// a terminal to ask on, --yes is required.
func confirm(cmd *cobra.Command, yes bool, what string) error {
	if yes {
		return nil
	}
	in := cmd.InOrStdin()
	if !isTerminal(in) {
		return fmt.Errorf("%w: %s cannot be undone; pass --yes to confirm", errNotConfirmed, what)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s cannot be undone. Continue? [y/N] ", what)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("read answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

// firstArg returns args[0], or "" when there is none.
func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// readAllLimited reads r up to maxInputFileBytes.
func readAllLimited(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxInputFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxInputFileBytes {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxInputFileBytes)
	}
	return data, nil
}
