package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"custos/internal/activity"
	"custos/internal/catalog"
	"custos/internal/cli"
	"custos/internal/crypt"
)

// newAdminCmd groups the verbs that work on a server's data directory
// directly, without the API.
func newAdminCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Operator verbs that work on the server's data directory",
	}
	cmd.AddCommand(newVerifyActivityLogCmd(), newVerifyExportCmd())
	return cmd
}

func newVerifyActivityLogCmd() *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "verify-activity-log",
		Short: "Prove the activity log's hash chain and signed checkpoints intact, or name the first bad record",
		Long: `Reads the activity log from <data-dir>/catalog.db and checks every record's hash
link and every signed checkpoint (signing keys are unsealed with
<data-dir>/keys/platform.key). Exits 0 when the chain is intact; otherwise prints
TAMPERED with the first bad record (modified, deleted, reordered or truncated)
and exits non-zero. Safe to run while the server runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir := dataDir
			if dir == "" {
				dir = os.Getenv(cli.EnvDataDir)
			}
			if dir == "" {
				dir = cli.DefaultDataDir
			}
			keyPath := filepath.Join(dir, "keys", "platform.key")
			catPath := filepath.Join(dir, "catalog.db")
			for _, p := range []string{keyPath, catPath} {
				if _, err := os.Stat(p); err != nil {
					return fmt.Errorf("verify activity log: %w (is --data-dir the server's data directory?)", err)
				}
			}
			key, err := crypt.OpenPlatformKey(keyPath)
			if err != nil {
				return fmt.Errorf("verify activity log: %w", err)
			}
			defer key.Destroy()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			cat, err := catalog.Open(ctx, catalog.Options{Path: catPath})
			if err != nil {
				return fmt.Errorf("verify activity log: %w", err)
			}
			defer cat.Close()
			rep, err := activity.Verify(ctx, cat, key)
			var ce *activity.ChainError
			if errors.As(err, &ce) {
				fmt.Fprintf(cmd.OutOrStdout(), "TAMPERED: first bad record is %d: %s\n", ce.Seq, ce.Msg)
				fmt.Fprintf(cmd.OutOrStdout(), "records verified before it: %d\n", rep.Records)
				return errTampered
			}
			if err != nil {
				return fmt.Errorf("verify activity log: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "activity log intact: %d records, %d signed checkpoints verified, head %d %s\n",
				rep.Records, rep.Checkpoints, rep.LastSeq, rep.LastHash)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "server data directory (env "+cli.EnvDataDir+", default ./"+cli.DefaultDataDir+")")
	return cmd
}

// errTampered makes the command fail after it printed its finding.
var errTampered = errors.New("activity log verification failed")
