#!/usr/bin/env bash
# Interop through a real upstream OpenID provider: the official MCP Python SDK (pinned in
# requirements.txt) against our demo MCP server at /mcp, with our server's users signing in at
# panva's oidc-provider (`[users] kind = "oidc"`). mcp_python_oidc_client.py plays a headless
# browser that posts the forms of our login page, the provider's login and consent pages and our
# consent page. Three users of the provider's test profile:
#   alice   (groups mcp-users, mcp-admins)  signs in as `op:alice` with mcp:tools, steps up to mcp:admin;
#   bob     (group mcp-users)               signs in as `op:bob`, is never offered mcp:admin;
#   mallory (no group)                      is outside allowed_groups: our refusal page, nothing issued.
#
#   scripts/interop/run_python_oidc.sh   (after `cargo build`; uses $CARGO_TARGET_DIR or target/)
#
# The provider: $MCP_OAUTH_TEST_OIDC_ISSUER when set (scripts/test.sh starts it with
# scripts/services/oidc_provider.sh); otherwise this script starts its own with that service script.
# Our server registers its redirect URI there with dynamic client registration (RFC 7591).
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${MCP_OAUTH_BIN:-${CARGO_TARGET_DIR:-target}/debug/mcp-oauth}
VENV=${MCP_INTEROP_VENV:-target/interop-venv}
[ -x "$BIN" ] || { echo "no $BIN: run cargo build first" >&2; exit 1; }

# 1. A virtual environment with the pinned SDK (reinstalled when requirements.txt changes).
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
if ! cmp -s scripts/interop/requirements.txt "$VENV/.requirements.txt"; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/interop/requirements.txt
  cp scripts/interop/requirements.txt "$VENV/.requirements.txt"
fi

work=$(mktemp -d)
server_pid=
SERVICE_CLEANUPS=()
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  for stop in "${SERVICE_CLEANUPS[@]}"; do eval "$stop" || true; done
}
trap cleanup EXIT

# 2. The provider.
if [ -z "${MCP_OAUTH_TEST_OIDC_ISSUER:-}" ]; then
  MCP_OAUTH_REQUIRE_SERVICES=1
  # shellcheck source=../services/oidc_provider.sh
  source scripts/services/oidc_provider.sh
fi
issuer=$MCP_OAUTH_TEST_OIDC_ISSUER

# 3. Our server on a free port, registered at the provider with its callback as redirect URI.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
name=op
registration=$(curl -sf --max-time 10 -H 'content-type: application/json' \
  -d "{\"client_name\":\"mcp-oauth interop\",\"redirect_uris\":[\"http://127.0.0.1:$port/login/callback/$name\"],\"grant_types\":[\"authorization_code\"],\"response_types\":[\"code\"],\"token_endpoint_auth_method\":\"client_secret_basic\"}" \
  "$issuer/reg") || { echo "registering at the provider ($issuer/reg) failed" >&2; exit 1; }
client_id=$(printf '%s' "$registration" | python3 -c 'import json, sys; print(json.load(sys.stdin)["client_id"])')
# The secret goes to a file only our server reads (never into the config text or a log).
( umask 077; printf '%s' "$registration" | python3 -c 'import json, sys; print(json.load(sys.stdin)["client_secret"])' >"$work/client-secret" )
cat >"$work/config.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
issuer = "http://127.0.0.1:$port"

[storage]
kind = "sqlite"
data_dir = "$work/data"

[users]
kind = "oidc"

[users.oidc]
issuer = "$issuer"
client_id = "$client_id"
client_secret_file = "$work/client-secret"
name = "$name"
label = "Test OP"
scopes = ["openid", "email", "profile", "groups"]
default_scopes = ["mcp:tools"]
allowed_groups = ["mcp-users"]
scope_map = [{ group = "mcp-admins", scopes = ["mcp:admin"] }]

[[resources]]
uri = "http://127.0.0.1:$port/mcp"
name = "Demo MCP server"
scopes = ["mcp:tools", "mcp:admin"]
TOML
"$BIN" --config "$work/config.toml" config check >"$work/check" 2>&1 \
  || { echo "config check against the provider failed:"; cat "$work/check"; exit 1; }
RUST_LOG=${RUST_LOG:-info} "$BIN" --config "$work/config.toml" serve >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "mcp-oauth listening" "$work/stderr" && break
  kill -0 "$server_pid" 2>/dev/null || { echo "server exited:"; cat "$work/stderr"; exit 1; }
  sleep 0.1
done
grep -q "mcp-oauth listening" "$work/stderr" || { echo "server did not start:"; cat "$work/stderr"; exit 1; }

# 4. The SDK client, once per user (each a fresh browser and a fresh SDK client).
echo "MCP Python SDK $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))') against http://127.0.0.1:$port/mcp, users signing in at $issuer"
for case in "alice alice-op-password admin" "bob bob-op-password user" "mallory mallory-op-password refused"; do
  read -r user password expect <<<"$case"
  if ! MCP_PASSWORD=$password timeout 150 "$VENV/bin/python" scripts/interop/mcp_python_oidc_client.py \
      "http://127.0.0.1:$port/mcp" "$name" "$user" "$expect"; then
    echo "--- server log ---"; tail -n 50 "$work/stderr"
    if [ -n "${MCP_OAUTH_TEST_OIDC_LOG:-}" ]; then echo "--- OpenID provider log ---"; tail -n 50 "$MCP_OAUTH_TEST_OIDC_LOG"; fi
    exit 1
  fi
done
if grep -qF -- "$(cat "$work/client-secret")" "$work/stderr" "$work/stdout"; then echo "the upstream client secret leaked into the server log"; exit 1; fi
