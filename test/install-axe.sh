#!/usr/bin/env bash
# install-axe.sh: install axe-core (Deque's accessibility engine, npm
# package axe-core, pinned) for the portal's accessibility test
# (e2e TestPortalAccessibility), which injects axe.min.js into each page
# through the DevTools protocol. It is never shipped with the portal.
# Installs into ${CUSTOS_TOOLS:-$HOME/.cache/custos}/axe-core; the test
# reads CUSTOS_AXE (a path to axe.min.js) or that default. Safe to run again.
set -euo pipefail
version=4.10.2
dest="${CUSTOS_TOOLS:-$HOME/.cache/custos}/axe-core"
if [ -f "$dest/node_modules/axe-core/axe.min.js" ] && grep -q "\"version\": \"$version\"" "$dest/node_modules/axe-core/package.json"; then
  echo "axe-core $version already in $dest"
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-axe.sh: npm is missing; install Node.js and npm and rerun" >&2
    exit 1
  fi
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "install-axe.sh: installing npm (Debian) for axe-core" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
mkdir -p "$dest"
npm install --no-save --no-audit --no-fund --prefix "$dest" "axe-core@$version"
echo "installed axe-core $version in $dest/node_modules/axe-core/axe.min.js"
