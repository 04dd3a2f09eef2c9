#!/usr/bin/env bash
# install-chromium.sh: install Debian's chromium, which the web portal's
# browser tests (e2e/portal_test.go, driven by chromedp) start headless.
# Uses apt-get only when no Chromium is on the PATH.
set -euo pipefail
for b in chromium chromium-browser google-chrome headless-shell; do
	if command -v "$b" >/dev/null 2>&1; then
		echo "$b already installed"
		exit 0
	fi
done
if ! command -v apt-get >/dev/null 2>&1; then
	echo "install-chromium.sh: Chromium is missing and apt-get is not available; install chromium with your package manager" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
echo "installed chromium"
