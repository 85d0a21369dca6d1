#!/usr/bin/env bash
# Makes sure PostgreSQL is there for `make run` and `make test`:
# DATABASE_URL set → nothing to do; a server on 127.0.0.1:5432 → nothing to do;
# Debian's packages installed → start the cluster; none → install them (root).
set -euo pipefail
answers() { command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; }

if [ -n "${DATABASE_URL:-}" ]; then exit 0; fi
if answers; then exit 0; fi
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "PostgreSQL is missing: installing Debian's postgresql package" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null; }
  else
    echo "No PostgreSQL answers on 127.0.0.1:5432 and none is installed." >&2
    echo "Install it (Debian/Ubuntu: sudo apt-get install postgresql) or set DATABASE_URL." >&2
    exit 1
  fi
fi
# Debian's package ships a cluster named main on 5432; start it with trust on loopback.
ver=$(ls /usr/lib/postgresql | sort -V | tail -1)
if command -v pg_ctlcluster >/dev/null && [ -d "/etc/postgresql/$ver/main" ]; then
  hba="/etc/postgresql/$ver/main/pg_hba.conf"
  if ! grep -q "pipeline: trust on loopback" "$hba" 2>/dev/null; then
    sed -i '1i # pipeline: trust on loopback for the dev stack and tests\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start 2>/dev/null || pg_ctlcluster "$ver" main start || true
fi
for _ in $(seq 1 30); do answers && exit 0; sleep 1; done
echo "PostgreSQL did not come up on 127.0.0.1:5432 (see /var/log/postgresql/); set DATABASE_URL to use another server." >&2
exit 1
