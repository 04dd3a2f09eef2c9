package main

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"custos/internal/catalog"
	"custos/internal/cli"
	"custos/internal/crypt"
	"custos/internal/export"
)

// newVerifyExportCmd checks an export destination against its signed
// manifest chain.
func newVerifyExportCmd() *cobra.Command {
	var dataDir, pubKey, endpoint, region, caFile string
	var printKey bool
	cmd := &cobra.Command{
		Use:   "verify-export DIR|s3://BUCKET[/PREFIX]",
		Short: "Prove a data export destination complete and unmodified against its signed manifest chain",
		Long: `Reads every manifest of a data export destination (a directory, or an
S3-compatible bucket and prefix), checks each manifest's Ed25519 signature and
its link to the previous one, and then every data file: present, of the listed
size and SHA-256, and listed in exactly one manifest. Exits 0 when all holds;
otherwise prints TAMPERED with each finding (modified, missing, extra, chain)
and exits non-zero.

The verification key comes from the server's data directory (--data-dir: the
signing key is unsealed with <data-dir>/keys/platform.key, and the chain head
is compared with the one the catalog recorded, so removed trailing manifests
are found too) or is given as --public-key (base64, as printed by
--print-public-key). S3 credentials come from AWS_ACCESS_KEY_ID and
AWS_SECRET_ACCESS_KEY.`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			dir := dataDir
			if dir == "" {
				dir = os.Getenv(cli.EnvDataDir)
			}
			var pub ed25519.PublicKey
			var cat *catalog.DB
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			switch {
			case pubKey != "":
				b, err := base64.StdEncoding.DecodeString(pubKey)
				if err != nil || len(b) != ed25519.PublicKeySize {
					return errors.New("verify export: --public-key is not a base64 Ed25519 public key")
				}
				pub = b
			default:
				if dir == "" {
					dir = cli.DefaultDataDir
				}
				pk, err := crypt.OpenPlatformKey(filepath.Join(dir, "keys", "platform.key"))
				if err != nil {
					return fmt.Errorf("verify export: %w (is --data-dir the server's data directory? or pass --public-key)", err)
				}
				defer pk.Destroy()
				path := filepath.Join(dir, "keys", "export-signing.key")
				if _, err := os.Stat(path); err != nil {
					return fmt.Errorf("verify export: %w", err)
				}
				k, err := export.OpenSigningKey(path, pk)
				if err != nil {
					return fmt.Errorf("verify export: %w", err)
				}
				pub = k.Public()
				if p := filepath.Join(dir, "catalog.db"); fileExists(p) {
					if cat, err = catalog.Open(ctx, catalog.Options{Path: p}); err != nil {
						return fmt.Errorf("verify export: %w", err)
					}
					defer cat.Close()
				}
			}
			if printKey {
				fmt.Fprintf(out, "%s\n", base64.StdEncoding.EncodeToString(pub))
				if len(args) == 0 {
					return nil
				}
			}
			if len(args) != 1 {
				return errors.New("verify export: name the destination (a directory or s3://bucket/prefix)")
			}
			dest, err := openVerifyDestination(args[0], endpoint, region, caFile)
			if err != nil {
				return err
			}
			rep, err := export.Verify(ctx, dest, pub)
			if err != nil && !errors.Is(err, export.ErrTampered) {
				return fmt.Errorf("verify export: %w", err)
			}
			problems := rep.Problems
			if cat != nil && err == nil {
				for _, id := range rep.ExportIDs {
					st, serr := cat.ExportState(ctx, id)
					if serr != nil {
						return fmt.Errorf("verify export: %w", serr)
					}
					if st.Seq > rep.HeadSeq {
						problems = append(problems, &export.VerifyError{Kind: "missing", Object: "_manifests",
							Msg: fmt.Sprintf("export %s wrote %d manifests; the destination holds %d", id, st.Seq, rep.HeadSeq)})
					}
				}
			}
			if len(problems) > 0 {
				for _, p := range problems {
					fmt.Fprintf(out, "TAMPERED: %s %s: %s\n", p.Kind, p.Object, p.Msg)
				}
				fmt.Fprintf(out, "files verified: %d\n", rep.Files)
				return errExportTampered
			}
			fmt.Fprintf(out, "export intact: %d manifests, %d files, %d rows, %d bytes, head %d %s\n",
				rep.Manifests, rep.Files, rep.Rows, rep.Bytes, rep.HeadSeq, rep.HeadHash)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", "", "server data directory holding the export signing key (env "+cli.EnvDataDir+", default ./"+cli.DefaultDataDir+")")
	f.StringVar(&pubKey, "public-key", "", "verify with this base64 Ed25519 public key instead of the data directory's")
	f.BoolVar(&printKey, "print-public-key", false, "print the export verification key (base64) from the data directory")
	f.StringVar(&endpoint, "s3-endpoint", "", "S3-compatible endpoint URL for s3:// destinations (https://host:port)")
	f.StringVar(&region, "s3-region", "us-east-1", "S3 region for request signing")
	f.StringVar(&caFile, "s3-ca-file", "", "PEM bundle trusted for the S3 endpoint in addition to the system roots")
	return cmd
}

// errExportTampered makes the command fail after it printed its findings.
var errExportTampered = errors.New("export verification failed")

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func openVerifyDestination(arg, endpoint, region, caFile string) (export.Destination, error) {
	if strings.HasPrefix(arg, "s3://") {
		if endpoint == "" {
			return nil, errors.New("verify export: an s3:// destination needs --s3-endpoint")
		}
		d, err := export.ParseDestinationURI(arg, &export.S3Config{Endpoint: endpoint, Region: region, AccessKeyID: os.Getenv("AWS_ACCESS_KEY_ID")},
			os.Getenv("AWS_SECRET_ACCESS_KEY"))
		if err != nil {
			return nil, fmt.Errorf("verify export: %w", err)
		}
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if caFile != "" {
			pem, err := os.ReadFile(caFile)
			if err != nil {
				return nil, fmt.Errorf("verify export: %w", err)
			}
			pool, err := x509.SystemCertPool()
			if err != nil || pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("verify export: %s holds no PEM certificate", caFile)
			}
			tc.RootCAs = pool
		}
		d.(*export.S3Destination).Client = &http.Client{Timeout: time.Minute, Transport: &http.Transport{TLSClientConfig: tc}}
		return d, nil
	}
	p, err := filepath.Abs(arg)
	if err != nil {
		return nil, fmt.Errorf("verify export: %w", err)
	}
	if st, err := os.Stat(p); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("verify export: %s is not a directory", arg)
	}
	return &export.DirDestination{Root: p}, nil
}
