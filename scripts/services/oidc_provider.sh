# shellcheck shell=bash
# Sourced by scripts/test.sh: a real OpenID provider, panva's oidc-provider (pinned in
# scripts/oidc-provider/package-lock.json), with its test profile on a free loopback port, for the
# federated sign-in tests (`[users] kind = "oidc"`). Installs it with `npm ci` where missing; needs
# Node.js 20.18 or later with npm.
#
# Exports:
#   MCP_OAUTH_TEST_OIDC_ISSUER   http://127.0.0.1:PORT, the provider's issuer (discovery at
#                                <issuer>/.well-known/openid-configuration; a test registers its own
#                                client there, RFC 7591). Accounts: scripts/oidc-provider/README.md.
#   MCP_OAUTH_TEST_OIDC_LOG      the provider's stderr (in a temp directory removed at the end)
#
# Without a usable node, it says so and fails the run when services are required
# (MCP_OAUTH_REQUIRE_SERVICES=1); otherwise the tests that need the provider say so and return.

oidc_op_dir="$PWD/scripts/oidc-provider"
oidc_op_missing=
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  oidc_op_missing="node and npm are needed for the test OpenID provider (Node.js 20.18 or later; Debian bookworm's nodejs 18 is too old, e.g. NodeSource's nodejs 20)"
elif ! node -e 'process.exit(typeof URL.parse === "function" ? 0 : 1)' 2>/dev/null; then
  oidc_op_missing="node $(node --version) is too old for the test OpenID provider (Node.js 20.18 or later is needed)"
fi
if [ -n "$oidc_op_missing" ]; then
  echo "$oidc_op_missing" >&2
  if [ "${MCP_OAUTH_REQUIRE_SERVICES:-}" = 1 ]; then exit 1; fi
else
  "$oidc_op_dir/install.sh" || { echo "installing the test OpenID provider (npm ci in scripts/oidc-provider) failed" >&2; exit 1; }
  oidc_op_log=$(mktemp -d)
  # --port 0: the provider takes a free port itself and prints it, so there is no race for it.
  node "$oidc_op_dir/server.mjs" --profile test --port 0 >"$oidc_op_log/stdout" 2>"$oidc_op_log/stderr" &
  oidc_op_pid=$!
  SERVICE_CLEANUPS+=("kill $oidc_op_pid 2>/dev/null; wait $oidc_op_pid 2>/dev/null; rm -rf '$oidc_op_log'")
  oidc_op_issuer=
  for _ in $(seq 1 100); do
    oidc_op_issuer=$(sed -n 's/^listening //p' "$oidc_op_log/stdout")
    [ -n "$oidc_op_issuer" ] && break
    kill -0 "$oidc_op_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$oidc_op_issuer" ] || ! curl -sf --max-time 5 "$oidc_op_issuer/.well-known/openid-configuration" >/dev/null; then
    echo "the test OpenID provider did not start; its output:" >&2
    cat "$oidc_op_log/stdout" "$oidc_op_log/stderr" >&2
    exit 1
  fi
  export MCP_OAUTH_TEST_OIDC_ISSUER="$oidc_op_issuer"
  # Its stderr (start-up warnings, its own failures), for a failing test to show.
  export MCP_OAUTH_TEST_OIDC_LOG="$oidc_op_log/stderr"
  echo "OpenID provider (oidc-provider $(node -p "require('$oidc_op_dir/node_modules/oidc-provider/package.json').version")) on $MCP_OAUTH_TEST_OIDC_ISSUER"
fi
unset oidc_op_dir oidc_op_missing oidc_op_log oidc_op_pid oidc_op_issuer
