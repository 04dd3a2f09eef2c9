package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"custos/internal/cli"
)

// Build information, set at link time:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=$(git rev-parse HEAD)" ./cmd/custos
//
// When unset, they come from the module and VCS data the Go toolchain embeds.
var (
	version string
	commit  string
)

// buildInfo is what `custos version` reports.
type buildInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Modified  bool   `json:"modified,omitempty"`
	BuildTime string `json:"buildTime,omitempty"`
	GoVersion string `json:"goVersion"`
	Platform  string `json:"platform"`
}

// readBuildInfo combines the link-time variables with debug.ReadBuildInfo.
func readBuildInfo(ldVersion, ldCommit string, bi *debug.BuildInfo, ok bool) buildInfo {
	info := buildInfo{Version: ldVersion, Commit: ldCommit, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if ok && bi != nil {
		if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.modified":
				info.Modified = s.Value == "true" && ldCommit == ""
			case "vcs.time":
				if ldCommit == "" {
					info.BuildTime = s.Value
				}
			}
		}
	}
	if info.Version == "" {
		info.Version = "dev"
	}
	if info.Commit == "" {
		info.Commit = "unknown"
	}
	return info
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			bi, ok := debug.ReadBuildInfo()
			info := readBuildInfo(version, commit, bi, ok)
			if output == outputJSON {
				return cli.WriteJSON(cmd.OutOrStdout(), info)
			}
			c := info.Commit
			if info.Modified {
				c += " (modified)"
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "custos %s\ncommit: %s\ngo: %s %s\n", info.Version, c, info.GoVersion, info.Platform)
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", outputTable, "output format: table or json")
	return cmd
}
