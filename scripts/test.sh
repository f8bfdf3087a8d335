#!/usr/bin/env bash
# Runs every test of the workspace. This is the README's test command and what CI runs (.ci/run).
#
# 1. Services: each scripts/services/*.sh sets up one service the tests need (installing and
#    starting it on loopback where missing) and exports how to reach it. Tests that need a service
#    FAIL when it is required (MCP_OAUTH_REQUIRE_SERVICES=1, set here) and unreachable; they never
#    skip silently.
# 2. `cargo test` over the whole workspace (unit tests, the conformance kit against every backend,
#    end-to-end tests over loopback sockets).
# 3. The README quick-start, run for real: `mcp-oauth serve` on an ephemeral loopback port with no
#    config at all, then scripts/quickstart.sh against it with the printed admin password (it ends
#    by calling the demo MCP server's whoami with the token).
# 4. The deployment files: the systemd unit is verified (systemd-analyze), the Dockerfile built when a
#    Docker daemon is reachable.
# 5. Interop: the official MCP Python SDK (pinned, in a virtual environment) connects to the demo
#    MCP server with its own OAuth client (scripts/interop/run_python.sh), and again with our users
#    signing in at a real OpenID provider, the one scripts/services/oidc_provider.sh started
#    (scripts/interop/run_python_oidc.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

export MCP_OAUTH_REQUIRE_SERVICES=1
SERVICE_CLEANUPS=()
workdir=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$workdir"
  for stop in "${SERVICE_CLEANUPS[@]}"; do eval "$stop" || true; done
}
trap cleanup EXIT

for service in scripts/services/*.sh; do
  [ -e "$service" ] || continue
  echo "==> service: $(basename "$service" .sh)"
  # shellcheck source=/dev/null
  source "$service"
done

echo "==> cargo test (workspace, all features)"
cargo test --workspace --all-features --locked

echo "==> README quick-start against a real server"
cargo build --locked --quiet
# A free loopback port, so that bind and issuer agree (the client follows the issuer's URLs).
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MCP_OAUTH__SERVER__BIND=127.0.0.1:$port MCP_OAUTH__SERVER__ISSUER=http://127.0.0.1:$port \
  MCP_OAUTH__STORAGE__DATA_DIR="$workdir/data" RUST_LOG=info \
  "${CARGO_TARGET_DIR:-target}/debug/mcp-oauth" serve \
  >"$workdir/stdout" 2>"$workdir/stderr" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q 'mcp-oauth listening' "$workdir/stderr" && break
  sleep 0.1
done
grep -q 'mcp-oauth listening' "$workdir/stderr" || { echo "server did not start:"; cat "$workdir/stderr"; exit 1; }
password=$(sed -n 's/.*initial password: //p' "$workdir/stdout")
[ -n "$password" ] || { echo "no admin password printed"; exit 1; }
base="http://127.0.0.1:$port"
# The README quick start as written: the client commands log in headless and call a tool.
client=( "${CARGO_TARGET_DIR:-target}/debug/mcp-oauth" )
export MCP_OAUTH_CLIENT_STORE="$workdir/client"
printf '%s\n' "$password" | "${client[@]}" login "$base/mcp" --username admin --password-stdin >/dev/null
out=$("${client[@]}" call "$base/mcp" whoami)
echo "$out" | grep -q '"subject": *"admin"' || { echo "quick-start: login + call whoami failed:"; echo "$out"; exit 1; }
# The protocol by hand (scripts/quickstart.sh): curl and openssl only.
out=$(MCP_PASSWORD=$password scripts/quickstart.sh "$base")
echo "$out" | grep -q '"access_token":"' || { echo "quick-start: quickstart.sh failed:"; echo "$out"; exit 1; }
echo "$out" | grep -q '"subject":"admin"' || { echo "quick-start: the demo MCP server's whoami failed:"; echo "$out"; exit 1; }
# … and a failure says what went wrong.
if err=$(MCP_PASSWORD=wrong scripts/quickstart.sh "$base" 2>&1 >/dev/null); then echo "quickstart.sh accepted a wrong password"; exit 1; fi
echo "$err" | grep -q 'sign-in as admin failed' || { echo "quickstart.sh failed without saying why: $err"; exit 1; }
echo "quick-start OK"

echo "==> deployment files"
if command -v systemd-analyze >/dev/null 2>&1; then
  # The unit as shipped, pointed at the binary just built (verify checks that ExecStart exists).
  target_dir=${CARGO_TARGET_DIR:-target}
  case "$target_dir" in /*) ;; *) target_dir=$PWD/$target_dir ;; esac
  sed "s#/usr/local/bin/mcp-oauth#$target_dir/debug/mcp-oauth#" deploy/mcp-oauth.service \
    >"$workdir/mcp-oauth.service"
  systemd-analyze verify "$workdir/mcp-oauth.service"
  echo "systemd unit OK"
else
  echo "systemd-analyze not installed: deploy/mcp-oauth.service not verified"
fi
if docker info >/dev/null 2>&1; then
  docker build -f deploy/Dockerfile -t mcp-oauth-test .
  echo "Docker image OK"
else
  echo "no Docker daemon reachable: deploy/Dockerfile not built"
fi

echo "==> interop: official MCP Python SDK client against the demo MCP server"
scripts/interop/run_python.sh
echo "==> interop: the MCP Python SDK, users signing in at a real OpenID provider (oidc-provider)"
scripts/interop/run_python_oidc.sh
echo "==> all tests passed"
