#!/usr/bin/env bash
# The protocol by hand: registers a public client and walks the authorization-code flow with PKCE
# using nothing but curl and openssl, logging in through the HTML forms like a browser would. Every
# failure says which step failed and what the server answered.
#
#   scripts/quickstart.sh [BASE_URL]        (default http://127.0.0.1:9000)
#   MCP_USER=admin MCP_PASSWORD='…' scripts/quickstart.sh
#   MCP_RESOURCE=http://127.0.0.1:8000/mcp scripts/quickstart.sh   (a token for another MCP server)
#
# Prints the token response, then calls the demo MCP server's `whoami` tool at BASE_URL/mcp with the
# access token (skipped when the demo is not mounted). The password is read from MCP_PASSWORD or
# prompted for.
set -euo pipefail
BASE=${1:-http://127.0.0.1:9000}
USER_NAME=${MCP_USER:-admin}
if [ -z "${MCP_PASSWORD:-}" ]; then read -r -s -p "Password for $USER_NAME: " MCP_PASSWORD; echo; fi
REDIRECT=http://127.0.0.1:8765/callback
MCP_URL=${MCP_RESOURCE:-$BASE/mcp}
RESOURCE_PARAM=()
if [ -n "${MCP_RESOURCE:-}" ]; then RESOURCE_PARAM=(--data-urlencode "resource=$MCP_RESOURCE"); fi
JAR=$(mktemp); trap 'rm -f "$JAR" "$JAR.h"' EXIT

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }          # a string field of a JSON object
input() { sed -n "s/.*name=\"$1\" value=\"\([^\"]*\)\".*/\1/p" | head -n1; }   # a hidden form field
header() { tr -d '\r' | sed -n "s/^[Ll]ocation: //p"; }
fail() { echo "quickstart: $*" >&2; exit 1; }
# POSTs or GETs with curl; on a transport error or an HTTP error status, says which step failed, the
# status and the server's answer (an OAuth error is JSON: error + error_description), then stops.
call() {
  local what=$1; shift
  local out status
  out=$(curl -sS -w '\n%{http_code}' "$@") || fail "$what: cannot reach $BASE (is \`mcp-oauth serve\` running?)"
  status=${out##*$'\n'}; out=${out%$'\n'*}
  case "$status" in 2*|3*) printf '%s' "$out" ;; *) fail "$what: HTTP $status: $out" ;; esac
}

echo "1. register a public client (RFC 7591)"
CLIENT_ID=$(call "registration" -X POST "$BASE/register" -H 'content-type: application/json' \
  -d "{\"client_name\":\"quickstart\",\"redirect_uris\":[\"$REDIRECT\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"]}" \
  | field client_id)
[ -n "$CLIENT_ID" ] || fail "registration: no client_id in the answer"
echo "   client_id=$CLIENT_ID"

echo "2. PKCE verifier and S256 challenge (RFC 7636)"
VERIFIER=$(openssl rand -base64 48 | tr -d '\n=' | tr '+/' '-_' | cut -c1-64)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | openssl base64 | tr -d '\n=' | tr '+/' '-_')

echo "3. /authorize → login page"
LOGIN=$(call "/authorize" -o /dev/null -D - -c "$JAR" -b "$JAR" -G "$BASE/authorize" \
  --data-urlencode response_type=code --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=$REDIRECT" --data-urlencode "code_challenge=$CHALLENGE" \
  --data-urlencode code_challenge_method=S256 --data-urlencode state=quickstart \
  --data-urlencode scope=mcp:tools "${RESOURCE_PARAM[@]}" | header)
[ -n "$LOGIN" ] || fail "/authorize did not redirect to the login page"
PAGE=$(call "login page" -c "$JAR" -b "$JAR" "$BASE$LOGIN")
TX=$(echo "$PAGE" | input tx); CSRF=$(echo "$PAGE" | input csrf_token)
[ -n "$TX" ] && [ -n "$CSRF" ] || fail "the login page has no form"

echo "4. sign in as $USER_NAME, then approve the consent page"
CONSENT=$(curl -sS -c "$JAR" -b "$JAR" "$BASE/login" --data-urlencode "tx=$TX" --data-urlencode "csrf_token=$CSRF" \
  --data-urlencode "username=$USER_NAME" --data-urlencode "password=$MCP_PASSWORD") || fail "sign-in: cannot reach $BASE"
echo "$CONSENT" | grep -q 'Allow access?' || fail "sign-in as $USER_NAME failed (wrong password? MCP_USER / MCP_PASSWORD)"
CALLBACK=$(call "consent" -o /dev/null -D - -c "$JAR" -b "$JAR" "$BASE/consent" --data-urlencode "tx=$TX" \
  --data-urlencode "csrf_token=$CSRF" --data-urlencode decision=approve | header)
CODE=$(echo "$CALLBACK" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
[ -n "$CODE" ] || fail "consent: no code in the redirect ($CALLBACK)"
echo "   redirected to $REDIRECT?code=…&state=quickstart&iss=…"

echo "5. code → tokens"
TOKENS=$(call "token exchange" "$BASE/token" -d grant_type=authorization_code -d "code=$CODE" -d "client_id=$CLIENT_ID" \
  --data-urlencode "redirect_uri=$REDIRECT" -d "code_verifier=$VERIFIER" "${RESOURCE_PARAM[@]}")
echo "$TOKENS"
ACCESS=$(echo "$TOKENS" | field access_token)

# The demo MCP server speaks MCP's streamable HTTP: JSON-RPC in POST bodies, answers as JSON or as
# server-sent events (`data:` lines). Every request carries the bearer token.
mcp() {
  curl -s -D "$JAR.h" -H "Authorization: Bearer $ACCESS" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2025-06-18' \
    ${SESSION:+-H "mcp-session-id: $SESSION"} "$MCP_URL" -d "$1" | sed -n 's/^data: \(.\)/\1/p'
}
STATUS=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$MCP_URL")
if [ "$STATUS" != 401 ]; then echo "6. no protected MCP server at $MCP_URL (HTTP $STATUS): done"; exit 0; fi
echo "6. call the MCP server at $MCP_URL with the token: initialize, then tools/call whoami"
SESSION=
mcp '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"quickstart","version":"1"}}}' >/dev/null
SESSION=$(tr -d '\r' <"$JAR.h" | sed -n 's/^[Mm]cp-[Ss]ession-[Ii]d: //p')
mcp '{"jsonrpc":"2.0","method":"notifications/initialized"}' >/dev/null
mcp '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"whoami","arguments":{}}}'
