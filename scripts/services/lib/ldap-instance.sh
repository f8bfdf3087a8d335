#!/usr/bin/env bash
# A private OpenLDAP slapd for tests, never the system instance.
#
#   ldap-instance.sh install           install slapd + ldap-utils from Debian packages if missing
#   ldap-instance.sh start DIR PORT    build DIR on first use (its own cn=config from
#                                      tests/fixtures/ldap/config.ldif.in, loaded offline with
#                                      `slapadd -n0`; a test CA and a server certificate for 127.0.0.1
#                                      in DIR/tls, for StartTLS; the directory from
#                                      tests/fixtures/ldap/directory.ldif, loaded with ldapadd so the
#                                      memberof overlay sees it), then serve ldap://127.0.0.1:PORT/
#                                      and wait until `ldapwhoami` answers
#   ldap-instance.sh stop DIR          stop that instance (its data stays, `start` serves it again)
#   ldap-instance.sh pause|resume DIR  SIGSTOP / SIGCONT it: a directory that accepts connections and
#                                      never answers (for timeout tests)
#
# Used by scripts/services/slapd.sh (the shared instance of the test run) and by the LDAP outage
# tests, which run their own instance so stopping it disturbs no other test.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
fixtures="$root/tests/fixtures/ldap"
root_dn="cn=admin,dc=example,dc=org"
root_pw="admin-test-password"

find_slapd() {
  for c in slapd /usr/sbin/slapd /usr/local/sbin/slapd; do
    if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return 0; fi
  done
  return 1
}

install() {
  if find_slapd >/dev/null && command -v ldapwhoami >/dev/null && command -v slapadd >/dev/null; then
    return 0
  fi
  local sudo=
  if [ "$(id -u)" != 0 ]; then sudo=sudo; fi
  echo "installing slapd and ldap-utils (Debian packages)" >&2
  # no_configuration: the package must not create (or start) a system directory of its own.
  echo "slapd slapd/no_configuration boolean true" | $sudo debconf-set-selections
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd ldap-utils >&2 ||
    { $sudo apt-get update -q >&2 && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd ldap-utils >&2; }
}

whoami_ok() {
  ldapwhoami -x -H "ldap://127.0.0.1:$1/" -D "$root_dn" -w "$root_pw" >/dev/null 2>&1
}

start() {
  local dir=$1 port=$2 slapd
  slapd=$(find_slapd) || { echo "slapd is not installed (run: $0 install)" >&2; exit 1; }
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  local fresh=
  if [ ! -d "$dir/slapd.d" ]; then
    mkdir -p "$dir/slapd.d" "$dir/data" "$dir/tls"
    make_certificates "$dir/tls"
    sed "s|@DIR@|$dir|g" "$fixtures/config.ldif.in" >"$dir/config.ldif"
    slapadd -n0 -F "$dir/slapd.d" -l "$dir/config.ldif" >"$dir/slapadd.log" 2>&1 ||
      { cat "$dir/slapadd.log" >&2; exit 1; }
    fresh=1
  fi
  "$slapd" -F "$dir/slapd.d" -h "ldap://127.0.0.1:$port/" >"$dir/slapd.log" 2>&1 ||
    { echo "slapd did not start on port $port:" >&2; cat "$dir/slapd.log" >&2; exit 1; }
  for _ in $(seq 1 100); do
    whoami_ok "$port" && break
    sleep 0.1
  done
  whoami_ok "$port" || { echo "slapd on port $port does not answer" >&2; stop "$dir"; exit 1; }
  if [ -n "$fresh" ]; then
    ldapadd -x -H "ldap://127.0.0.1:$port/" -D "$root_dn" -w "$root_pw" -f "$fixtures/directory.ldif" \
      >"$dir/ldapadd.log" 2>&1 || { cat "$dir/ldapadd.log" >&2; stop "$dir"; exit 1; }
  fi
}

# A throw-away CA (tls/ca.pem, what clients trust) and a certificate for 127.0.0.1 signed by it.
make_certificates() {
  local tls=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj "/CN=mcp-oauth test CA" -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$tls/server.ext"
  openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" -CAcreateserial \
    -days 30 -extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null
}

pid_of() {
  [ -f "$1/slapd.pid" ] && cat "$1/slapd.pid"
}

stop() {
  local dir=$1 pid
  pid=$(pid_of "$dir") || return 0
  kill -CONT "$pid" 2>/dev/null || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/slapd.pid"
}

case "${1:-}" in
  install) install ;;
  start) start "${2:?DIR}" "${3:?PORT}" ;;
  stop) stop "${2:?DIR}" ;;
  pause) kill -STOP "$(pid_of "${2:?DIR}")" ;;
  resume) kill -CONT "$(pid_of "${2:?DIR}")" ;;
  *) echo "usage: $0 install | start DIR PORT | stop DIR | pause DIR | resume DIR" >&2; exit 2 ;;
esac
