# shellcheck shell=bash
# Sourced by scripts/test.sh: a private OpenLDAP slapd with the test directory
# (tests/fixtures/ldap/directory.ldif) on a free loopback port, for the LDAP tests. Installs slapd from
# Debian packages where it is missing; never touches a system slapd.
#
# Exports:
#   MCP_OAUTH_TEST_LDAP_URL       ldap://127.0.0.1:PORT/ of the shared instance
#   MCP_OAUTH_TEST_LDAP_CA_FILE   the test CA that signed its certificate (StartTLS tests)
#   MCP_OAUTH_TEST_LDAP_INSTANCE  path of scripts/services/lib/ldap-instance.sh (outage tests start their
#                                 own instance with it)

ldap_instance_script="$PWD/scripts/services/lib/ldap-instance.sh"
"$ldap_instance_script" install
ldap_dir=$(mktemp -d)
ldap_port=
for _ in $(seq 1 20); do
  candidate=$((20000 + RANDOM % 30000))
  # A port nothing answers on; slapd still fails cleanly if it was taken in between.
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$candidate") 2>/dev/null; then
    if "$ldap_instance_script" start "$ldap_dir/shared" "$candidate"; then
      ldap_port=$candidate
      break
    fi
    rm -rf "$ldap_dir/shared"
  fi
done
if [ -z "$ldap_port" ]; then
  echo "could not start the test slapd" >&2
  exit 1
fi
SERVICE_CLEANUPS+=("'$ldap_instance_script' stop '$ldap_dir/shared'; rm -rf '$ldap_dir'")
export MCP_OAUTH_TEST_LDAP_URL="ldap://127.0.0.1:$ldap_port/"
export MCP_OAUTH_TEST_LDAP_CA_FILE="$ldap_dir/shared/tls/ca.pem"
export MCP_OAUTH_TEST_LDAP_INSTANCE="$ldap_instance_script"
echo "slapd on $MCP_OAUTH_TEST_LDAP_URL (directory $ldap_dir/shared)"
unset ldap_dir ldap_port candidate
