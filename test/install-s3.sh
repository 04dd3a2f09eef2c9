#!/usr/bin/env bash
# install-s3.sh: install SeaweedFS ("weed"), the S3-compatible server that the
# data export tests (internal/export, TestS3*) write to. It is a Go program,
# installed from the Go module proxy into $(go env GOPATH)/bin; nothing is
# downloaded from anywhere else. Safe to run again: an installed binary of the
# pinned version is kept. Building it takes several minutes the first time.
set -euo pipefail
module="github.com/seaweedfs/seaweedfs"
version="v0.0.0-20261109003541-7506e5f91cd6"
gobin="$(go env GOPATH)/bin"
if [ -x "$gobin/weed" ] && go version -m "$gobin/weed" 2>/dev/null | grep -q "mod[[:space:]]*${module}[[:space:]]*${version}"; then
	echo "weed (SeaweedFS) ${version} already installed in $gobin"
	exit 0
fi
go install "${module}/weed@${version}"
echo "installed weed (SeaweedFS) ${version} in $gobin"
