#!/usr/bin/env bash
# Runs every test of the workspace. This is the README's test command and what CI runs (.ci/run).
#
# Services: the tests of this revision need none beyond the loopback interface. Durable-storage and
# LDAP tests (Postgres, slapd) are set up here as they land, and fail (never skip) when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo test (workspace, all features)"
cargo test --workspace --all-features --locked
