#!/usr/bin/env bash
# tests/admin/test_dashboard.sh -- the dashboard in a real headless Chromium
# (dashboard.py) against a live simulated house on SQLite (HOUSE_BACKEND picks
# another store), directly and under a path prefix through nginx.
# Usage: test_dashboard.sh SIMULATOR INGESTION ENRICHMENT STORAGE ADMIN ARTIFACT_DIR
# Screenshots are kept in ARTIFACT_DIR (dashboard*.png).
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/common.sh"
SIM=$1 ING=$2 ENR=$3 STO=$4 ADM=$5 ART=${6:-$TEST_TMP/artifacts}
. "$here/house.sh"
for f in /usr/bin/chromium /usr/bin/chromedriver; do
  [ -x "$f" ] || { echo "not ok - $f missing: run scripts/install-deps"; exit 1; }
done
/usr/bin/python3 -c 'import selenium' || { echo "not ok - python3-selenium missing: run scripts/install-deps"; exit 1; }
check "the house and admin-api are up" house_start
check "24 h of history seeded for the charts" house_seed_history
# the same page under a path prefix, through a real nginx (deploy/prefix/nginx.conf)
. "$here/../lib/nginx.sh"
NX_PORT=$(free_port)
check "nginx serves admin-api under /homeiq/" nginx_start "$here/../../deploy/prefix/nginx.conf" \
  LISTEN=127.0.0.1:$NX_PORT ADMIN=127.0.0.1:$AD_PORT
/usr/bin/python3 "$here/dashboard.py" "$A/" "$ART" "$PID_storage" "http://127.0.0.1:$NX_PORT/homeiq/"
check_eq "dashboard.py: every browser check passed" 0 $?
PID_storage_done=1
nginx_stop
stop_pid "$PID_admin"; check_eq "admin-api exits 0 on SIGTERM" 0 $?
for p in "$PID_ingest" "$PID_enrich" "$PID_sim"; do stop_pid "$p"; done
finish
