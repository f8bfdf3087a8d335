#!/usr/bin/env bash
# Screenshots of the pages a person sees, taken by headless Chromium from a real server, into
# docs/screenshots/ (the README links them). Not part of the test command: it needs Chromium
# (Debian: `apt-get install chromium`; or set CHROMIUM=/path/to/chrome).
#
#   scripts/screenshots.sh
#
# Starts `mcp-oauth serve` on a free loopback port with in-memory storage, one account and a
# `[ui]` section, then takes each page at 1200x900 and 390x844:
#   home      GET /
#   login     GET /authorize … (Chromium follows the redirect to /login, cookie included)
#   consent   the page the server answers to the sign-in form (posted with curl, since a screenshot
#             is one GET; the HTML is the server's, saved to a file and opened from there)
#   error     GET /authorize with an unknown client_id
#   login-mixed  the login page with two upstreams ("Sign in with …") beside the password form,
#             from the same server restarted with [upstreams.company] and [upstreams.github]
# and, 390 wide, the consent page in the dark colour scheme and the error page with its developer
# details opened (the server's HTML with `<details open>`: a screenshot cannot click).
set -euo pipefail
cd "$(dirname "$0")/.."

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}
[ -n "$CHROMIUM" ] || { echo "screenshots: Chromium not found (apt-get install chromium, or set CHROMIUM)" >&2; exit 1; }
fail() { echo "screenshots: $*" >&2; exit 1; }

cargo build --quiet --bin mcp-oauth
BIN=${CARGO_TARGET_DIR:-target}/debug/mcp-oauth
OUT=docs/screenshots
mkdir -p "$OUT"

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
password='screenshots-only password'
hash=$(printf '%s' "$password" | "$BIN" users hash-password)
cat >"$work/config.toml" <<EOF
[server]
bind = "127.0.0.1:$port"
issuer = "$base"

[storage]
kind = "memory"

[[users.accounts]]
username = "alice"
password_hash = "$hash"

[[resources]]
uri = "$base/mcp"
name = "Team notes"
scopes = ["mcp:tools", "mcp:admin"]
scope_descriptions = { "mcp:tools" = "Read and write your notes with the server's tools", "mcp:admin" = "Manage the notes server" }

[ui]
title = "Example Corp"
accent_color = "#0b6e4f"
EOF
start_server() {
  RUST_LOG=warn "$BIN" serve --config "$work/config.toml" >"$work/stdout" 2>"$work/stderr" &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$base/" 2>/dev/null && break
    kill -0 "$server_pid" 2>/dev/null || fail "the server stopped: $(cat "$work/stderr")"
    sleep 0.1
  done
  curl -fsS -o /dev/null "$base/" || fail "the server did not answer on $base: $(cat "$work/stderr")"
}
start_server

redirect=http://127.0.0.1:8765/callback
register() {
  client_id=$(curl -fsS -X POST "$base/register" -H 'content-type: application/json' \
    -d "{\"client_name\":\"Notes Desktop\",\"redirect_uris\":[\"$redirect\"],\"token_endpoint_auth_method\":\"none\"}" \
    | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')
  [ -n "$client_id" ] || fail "registration answered no client_id"
  # A fixed, valid S256 challenge (RFC 7636 appendix B): no code is ever exchanged here.
  authorize="$base/authorize?response_type=code&client_id=$client_id&redirect_uri=$(printf '%s' "$redirect" | sed 's/:/%3A/g; s#/#%2F#g')&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&state=s&scope=mcp%3Atools%20mcp%3Aadmin"
}
register

# The consent page, reached the way a browser does: /authorize → /login → post the form.
jar="$work/cookies"
login=$(curl -fsS -o /dev/null -D - -c "$jar" -b "$jar" "$authorize" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
[ -n "$login" ] || fail "/authorize did not redirect to the login page"
page=$(curl -fsS -c "$jar" -b "$jar" "$base$login")
input() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -n1; }
tx=$(echo "$page" | input tx); csrf=$(echo "$page" | input csrf_token)
curl -fsS -c "$jar" -b "$jar" "$base/login" --data-urlencode "tx=$tx" --data-urlencode "csrf_token=$csrf" \
  --data-urlencode username=alice --data-urlencode "password=$password" >"$work/consent.html"
grep -q 'Allow access?' "$work/consent.html" || fail "signing in did not lead to the consent page"

shot() { # NAME URL WIDTH HEIGHT [extra chromium flags]
  local name=$1 url=$2 w=$3 h=$4; shift 4
  "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run \
    --user-data-dir="$work/profile-$name-$w" "$@" \
    --screenshot="$PWD/$OUT/$name-$w.png" --window-size="$w,$h" "$url" >/dev/null 2>&1 \
    || fail "chromium could not take $name-$w"
  [ -s "$OUT/$name-$w.png" ] || fail "no $OUT/$name-$w.png"
  echo "$OUT/$name-$w.png"
}
for size in 1200,900 390,844; do
  w=${size%,*}; h=${size#*,}
  shot home "$base/" "$w" "$h"
  shot login "$authorize" "$w" "$h"
  shot consent "file://$work/consent.html" "$w" "$h"
  shot error "$base/authorize?response_type=code&client_id=no-such-client" "$w" "$h"
done
shot consent-dark "file://$work/consent.html" 390 844 --force-dark-mode --blink-settings=preferredColorScheme=0
curl -sS "$base/authorize?response_type=code&client_id=no-such-client" \
  | sed 's/<details class="developer">/<details class="developer" open>/' >"$work/error.html"
grep -q '<details class="developer" open>' "$work/error.html" || fail "the error page has no developer details"
shot error-details "file://$work/error.html" 390 844

# The login page with two upstreams beside the local accounts (login-mixed.png, light, 1200 wide):
# the same server restarted with [upstreams.company] (OpenID Connect) and [upstreams.github]. The
# page is rendered without contacting either (discovery happens at the first click), so their
# addresses need not exist; the client secrets are placeholders in a file of the work directory.
kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
printf 'screenshot-placeholder\n' >"$work/upstream-secret"
cat >>"$work/config.toml" <<EOF

[upstreams.company]
kind = "oidc"
label = "Example Corp SSO"
issuer = "https://sso.example.com/realms/example"
client_id = "mcp-oauth"
client_secret_file = "$work/upstream-secret"

[upstreams.github]
kind = "github"
client_id = "Iv1.example"
client_secret_file = "$work/upstream-secret"
allowed_orgs = ["example-corp"]
EOF
start_server
register
shot login-mixed "$authorize" 1200 900 --blink-settings=preferredColorScheme=1
mv "$OUT/login-mixed-1200.png" "$OUT/login-mixed.png"
echo "$OUT/login-mixed.png"
