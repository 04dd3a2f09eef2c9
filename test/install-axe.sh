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
mkdir -p "$dest"
npm install --no-save --no-audit --no-fund --prefix "$dest" "axe-core@$version"
echo "installed axe-core $version in $dest/node_modules/axe-core/axe.min.js"
