#!/usr/bin/env bash
# PKCS#11 tests against SoftHSM2: the crypt.PKCS11 key provider, and a store
# workspace whose key is wrapped in the HSM (revocation and restore). They
# need cgo and are built only with -tags pkcs11; the default build stays
# pure Go. Each test initialises its own token in a temporary directory
# (SOFTHSM2_CONF), so nothing outside the test's temp dirs is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e /usr/lib/softhsm/libsofthsm2.so ]; then
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
	else
		echo "pkcs11.sh: softhsm2 is not installed (apt-get install -y softhsm2)" >&2
		exit 1
	fi
fi
CGO_ENABLED=1 go test -count=1 -tags pkcs11 -run 'PKCS11' ./internal/crypt/... ./internal/store/... ./e2e
