// Command kqldoc regenerates docs/kql.md from the KQL function and operator
// registries and the conformance cases, run in process. Run it from the
// repository root: go run ./internal/conformance/kqldoc
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"custos/internal/conformance"
	"custos/internal/engine"
)

func main() {
	cases := flag.String("cases", "internal/conformance/testdata", "directory of *.case files")
	out := flag.String("o", "docs/kql.md", "output file")
	flag.Parse()
	cs, err := conformance.LoadCases(*cases)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kqldoc:", err)
		os.Exit(1)
	}
	rs := conformance.Run(context.Background(), cs, conformance.EngineRunner(engine.New(engine.Options{})))
	if err := os.WriteFile(*out, []byte(conformance.Doc(rs)), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "kqldoc:", err)
		os.Exit(1)
	}
	fmt.Print(conformance.PassTable(rs))
}
