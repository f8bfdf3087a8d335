# Postgres for the tests (sourced by scripts/test.sh).
#
# Uses a server on 127.0.0.1:5432 when one answers; otherwise starts the machine's cluster, or
# installs Debian's postgresql and starts it. Then (re)creates the test database, where each test
# makes its own schema, and exports MCP_OAUTH_TEST_PG_URL.
#
# The database is MCP_OAUTH_TEST_PG_DB when set; otherwise a name unique to this run
# (mcp_oauth_test_<pid>_<random>), dropped again when the run ends, so two checkouts testing at
# the same time on one Postgres do not clobber each other.
pg_host=127.0.0.1
pg_port=${MCP_OAUTH_TEST_PG_PORT:-5432}
pg_user=${MCP_OAUTH_TEST_PG_USER:-postgres}
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_ready() { pg_isready -q -h "$pg_host" -p "$pg_port" 2>/dev/null; }

if ! command -v pg_isready >/dev/null 2>&1 || ! pg_ready; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing postgresql (Debian packages)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null \
      || { as_root apt-get update -q >/dev/null && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
  fi
  version=$(ls /etc/postgresql | sort -V | tail -n1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # Trust local loopback connections for the test user (tests connect without a password).
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 50); do pg_ready && break; sleep 0.2; done
fi
pg_ready || { echo "Postgres is required for the tests but could not be started on $pg_host:$pg_port" >&2; exit 1; }

if [ -n "${MCP_OAUTH_TEST_PG_DB:-}" ]; then
  pg_db=$MCP_OAUTH_TEST_PG_DB
else
  pg_db="mcp_oauth_test_$$_$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
  # test.sh runs these when it exits.
  SERVICE_CLEANUPS+=("PGOPTIONS='-c client_min_messages=warning' psql -q -h $pg_host -p $pg_port -U $pg_user -d postgres -c 'DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)' >/dev/null")
fi
case $pg_db in
  *[!a-z0-9_]*|'') echo "MCP_OAUTH_TEST_PG_DB must be lower-case letters, digits and _: $pg_db" >&2; exit 1 ;;
esac
PGOPTIONS='-c client_min_messages=warning' psql -q -h "$pg_host" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1 \
  -c "DROP DATABASE IF EXISTS \"$pg_db\"" -c "CREATE DATABASE \"$pg_db\"" >/dev/null
export MCP_OAUTH_TEST_PG_URL="postgres://$pg_user@$pg_host:$pg_port/$pg_db"
echo "Postgres ready: $MCP_OAUTH_TEST_PG_URL"
