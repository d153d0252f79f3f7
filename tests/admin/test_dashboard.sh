#!/usr/bin/env bash
# tests/admin/test_dashboard.sh -- the dashboard in a real headless Chromium
# (dashboard.py) against a live simulated house on SQLite.
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
/usr/bin/python3 "$here/dashboard.py" "$A/" "$ART" "$PID_storage"
check_eq "dashboard.py: every browser check passed" 0 $?
PID_storage_done=1
stop_pid "$PID_admin"; check_eq "admin-api exits 0 on SIGTERM" 0 $?
for p in "$PID_ingest" "$PID_enrich" "$PID_sim"; do stop_pid "$p"; done
finish
