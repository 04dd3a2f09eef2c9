#!/usr/bin/env bash
# install-s3.sh: install custos-s3server, the S3-compatible server that the
# data export tests (internal/export, TestExportToS3) write to: a small
# program in test/s3server (its own module, so the main module does not
# depend on it) built on gofakes3 v1.2.0 with its file-backed backend. Its
# modules come from the Go module proxy; nothing is downloaded from anywhere
# else. Installed into $(go env GOPATH)/bin. Safe to run again.
#
# (SeaweedFS was the first choice, but its module has replace directives,
# so `go install github.com/seaweedfs/seaweedfs/weed@...` is refused, and
# building it from its module source takes far longer than a test run.)
set -euo pipefail
cd "$(dirname "$0")/s3server"
gobin="$(go env GOPATH)/bin"
mkdir -p "$gobin"
go build -o "$gobin/custos-s3server" .
echo "installed custos-s3server in $gobin"
