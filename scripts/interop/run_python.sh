#!/usr/bin/env bash
# Interop with the official MCP Python SDK (PyPI `mcp`, pinned in requirements.txt): starts
# `mcp-oauth serve` on a free loopback port with a seeded user, then runs mcp_python_client.py,
# which connects to the demo MCP server at /mcp with the SDK's own OAuth client. Fails on failure.
#
#   scripts/interop/run_python.sh        (after `cargo build`; uses $CARGO_TARGET_DIR or target/)
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

# 2. A server on a free port: the issuer and the demo resource must name the real port.
work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
user=alice
password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')
hash=$(printf '%s' "$password" | "$BIN" users hash-password)
cat >"$work/config.toml" <<TOML
[server]
bind = "127.0.0.1:$port"
issuer = "http://127.0.0.1:$port"

[storage]
kind = "sqlite"
data_dir = "$work/data"

[users]
create_admin = false

[[users.accounts]]
username = "$user"
password_hash = "$hash"

[[resources]]
uri = "http://127.0.0.1:$port/mcp"
name = "Demo MCP server"
scopes = ["mcp:tools", "mcp:admin"]
TOML
RUST_LOG=${RUST_LOG:-info} "$BIN" --config "$work/config.toml" serve >"$work/stdout" 2>"$work/stderr" &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q "mcp-oauth listening" "$work/stderr" && break
  kill -0 "$server_pid" 2>/dev/null || { echo "server exited:"; cat "$work/stderr"; exit 1; }
  sleep 0.1
done
grep -q "mcp-oauth listening" "$work/stderr" || { echo "server did not start:"; cat "$work/stderr"; exit 1; }

# 3. The SDK client.
echo "MCP Python SDK $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))') against http://127.0.0.1:$port/mcp"
if ! MCP_PASSWORD=$password "$VENV/bin/python" scripts/interop/mcp_python_client.py "http://127.0.0.1:$port/mcp" "$user"; then
  echo "--- server log ---"; tail -n 50 "$work/stderr"
  exit 1
fi
if grep -qF -- "$password" "$work/stderr"; then echo "the password leaked into the server log"; exit 1; fi
