#!/usr/bin/env bash
# install-mailpit.sh: install the mailpit SMTP test server that the alert
# email tests (internal/alert, TestEmailThroughMailpit) send real mail to.
# It is a Go program, installed from the Go module proxy into
# $(go env GOPATH)/bin; nothing is downloaded from anywhere else. Safe to run
# again: an installed binary of the pinned version is kept.
set -euo pipefail
version="v1.33.1"
gobin="$(go env GOPATH)/bin"
if [ -x "$gobin/mailpit" ] && go version -m "$gobin/mailpit" 2>/dev/null | grep -q "mod[[:space:]]*github.com/axllent/mailpit[[:space:]]*${version}"; then
	echo "mailpit ${version} already installed in $gobin"
	exit 0
fi
go install "github.com/axllent/mailpit@${version}"
echo "installed mailpit ${version} in $gobin"
