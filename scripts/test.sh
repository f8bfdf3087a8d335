#!/usr/bin/env bash
# Runs every test of the workspace. This is the README's test command and what CI runs (.ci/run).
#
# 1. `cargo test` over the whole workspace (unit tests, the conformance kit against every backend,
#    end-to-end tests over loopback sockets).
# 2. The README quick-start, run for real: `mcp-oauth serve` on an ephemeral loopback port with no
#    config at all, then scripts/quickstart.sh against it with the printed admin password.
#
# Services: this revision needs nothing beyond loopback. Postgres and slapd are set up here as the
# tests that need them land; those tests fail (never skip) when a required service is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo test (workspace, all features)"
cargo test --workspace --all-features --locked

echo "==> README quick-start against a real server"
cargo build --locked --quiet
workdir=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$workdir"
}
trap cleanup EXIT
MCP_OAUTH__SERVER__BIND=127.0.0.1:0 RUST_LOG=info target/debug/mcp-oauth serve \
  >"$workdir/stdout" 2>"$workdir/stderr" &
server_pid=$!
port=
for _ in $(seq 1 100); do
  port=$(sed -n 's/.*address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$workdir/stderr" | head -n1)
  [ -n "$port" ] && break
  sleep 0.1
done
if [ -z "$port" ]; then echo "server did not start:"; cat "$workdir/stderr"; exit 1; fi
password=$(sed -n 's/.*one-time password: //p' "$workdir/stdout")
[ -n "$password" ] || { echo "no admin password printed"; exit 1; }
out=$(MCP_PASSWORD=$password scripts/quickstart.sh "http://127.0.0.1:$port")
echo "$out" | grep -q '"access_token":"' || { echo "quick-start failed:"; echo "$out"; exit 1; }
if grep -qF "$password" "$workdir/stderr"; then echo "the admin password leaked into the log"; exit 1; fi
echo "quick-start OK"
echo "==> all tests passed"
