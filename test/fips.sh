#!/usr/bin/env bash
# fips.sh: run Custos's crypto-relevant tests with the Go Cryptographic
# Module in FIPS 140-3 mode (GODEBUG=fips140=on) and fail on any failure.
#
#   test/fips.sh            # the packages below
#   test/fips.sh ./internal/crypt/...   # or the packages you name
#
# Packages: key hierarchy and providers (crypt, cmk), the encrypted store,
# the token service (identity: JWT signing and verification), data export
# (SigV4, Ed25519 manifests), the activity log's signed chain, and the
# server's TLS listeners. See docs/encryption.md, "FIPS 140-3 mode".
set -euo pipefail
cd "$(dirname "$0")/.."
pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
	pkgs=(./internal/crypt/... ./internal/cmk/... ./internal/store/... ./internal/identity/... ./internal/export/... ./internal/activity/...)
fi
export GODEBUG=fips140=on
# Prove the mode is really on before trusting the test results.
probe="$(mktemp -d)"
trap 'rm -rf "$probe"' EXIT
cat > "$probe/main.go" <<'GO'
package main

import (
	"crypto/fips140"
	"fmt"
	"os"
)

func main() {
	if !fips140.Enabled() {
		fmt.Println("fips: FIPS 140-3 mode is NOT enabled")
		os.Exit(1)
	}
	fmt.Println("fips: FIPS 140-3 mode enabled (crypto/fips140.Enabled)")
}
GO
(cd "$probe" && cat > go.mod <<'MOD'
module fipsprobe

go 1.26
MOD
go run .)
echo "fips: go test ${pkgs[*]} with GODEBUG=$GODEBUG"
go test -count=1 "${pkgs[@]}"
# The server's TLS listeners and the HTTPS data path, in FIPS mode.
go test -count=1 -run 'TLS|Listener|MutualTLS|PublicNetworkAccess|PrivateLinkScope' ./internal/server/
echo "fips: PASS"
