#!/usr/bin/env bash
# install-oidc.sh: build custos-test-oidc, the external OpenID Connect
# provider that the external-issuer tests (internal/identity,
# TestExternalIssuerZitadel) obtain real tokens from. It is the example
# OpenID Provider of github.com/zitadel/oidc/v3 (pinned in
# test/oidc-provider/go.mod) served over HTTPS; the module and its
# dependencies come from the Go module proxy. Dex and ORY Hydra cannot be
# installed with `go install` from the proxy (their go.mod files carry
# replace directives, and Dex's v2 tags are not module versions), so this
# library-based provider stands in for them. Installs into
# $(go env GOPATH)/bin. Safe to run again.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gobin="$(go env GOPATH)/bin"
mkdir -p "$gobin"
cd "$here/oidc-provider"
go build -o "$gobin/custos-test-oidc" .
echo "installed custos-test-oidc in $gobin"
