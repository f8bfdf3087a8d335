#!/usr/bin/env bash
# Installs the pinned oidc-provider (package-lock.json) into scripts/oidc-provider/node_modules.
# Idempotent and quiet: does nothing when node_modules already matches the lock file.
set -euo pipefail
cd "$(dirname "$0")"
command -v node >/dev/null 2>&1 || { echo "node is not installed (Node.js 20.18 or later with npm is needed; Debian bookworm's nodejs 18 is too old)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "npm is not installed (apt-get install npm)" >&2; exit 1; }
# npm ci writes node_modules/.package-lock.json; when it equals our lock file's packages, the install is current.
stamp=node_modules/.mcp-oauth-installed
if [ -f "$stamp" ] && [ -d node_modules/oidc-provider ] && cmp -s "$stamp" package-lock.json; then
  exit 0
fi
npm ci --no-audit --no-fund --loglevel=error >/dev/null
cp package-lock.json "$stamp"
