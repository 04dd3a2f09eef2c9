#!/usr/bin/env bash
# test.sh: run the whole Custos test suite, with the race detector, on a fresh
# machine. The only prerequisite is Go (see go.mod for the version); the race
# detector also needs a C compiler, the PKCS#11 tests SoftHSM2 and the TLS
# scan sslscan, the agent tests rsyslog and the portal tests Chromium and axe-core (npm), which these
# scripts install with apt-get when they are missing. Extra arguments go to `go test` (e.g. ./test.sh -run TestX).
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v go >/dev/null 2>&1; then
	echo "test.sh: Go is not installed; get it from https://go.dev/dl/ (version in go.mod)" >&2
	exit 1
fi

# -race needs cgo and a C compiler with the C library headers.
if ! command -v "${CC:-gcc}" >/dev/null 2>&1; then
	if command -v apt-get >/dev/null 2>&1; then
		sudo=""
		if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
		echo "test.sh: installing gcc for the race detector" >&2
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
	else
		echo "test.sh: the race detector needs a C compiler (gcc); install one and rerun" >&2
		exit 1
	fi
fi
export CGO_ENABLED=1

# The alert email tests send real mail to mailpit (a Go program from the
# module proxy); the script keeps an installed binary of the pinned version.
bash test/install-mailpit.sh
# The agent's syslog test forwards through Debian's rsyslog; the portal's
# browser tests drive Debian's Chromium. Both are installed when missing.
bash test/install-rsyslog.sh
bash test/install-chromium.sh
# The portal's accessibility test runs axe-core (npm) in that Chromium.
bash test/install-axe.sh
# The external-issuer tests get tokens from a real OpenID provider, and the
# data export tests write to a real S3-compatible server; both are small
# programs in their own modules under test/, built from the module proxy.
bash test/install-oidc.sh
bash test/install-s3.sh
# The disk-full tests on real block devices make an ext4 filesystem and a
# thin-provisioned XFS volume on loop devices (mkfs.ext4, mkfs.xfs, losetup,
# mount; the e2e fault tests and the store's flush/merge disk-full tests run
# as root).
bash test/install-fstools.sh

# go test prints one "ok"/"FAIL" summary line per package.
go test -race -timeout 60m "$@" ./...

# The PKCS#11 key provider needs cgo and SoftHSM2 (installed by the script
# when missing); it is built only with -tags pkcs11, so the default build
# stays pure Go. Skipped when the caller narrows the run with arguments.
# The TLS scan (sslscan, installed by the script when missing) runs a real
# server and fails on any protocol, cipher or certificate weakness.
if [ "$#" -eq 0 ]; then
	bash test/pkcs11.sh
	bash test/tlsscan.sh
	# The crypto-relevant packages again, in FIPS 140-3 mode.
	bash test/fips.sh
fi
