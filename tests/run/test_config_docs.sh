#!/usr/bin/env bash
# test_config_docs.sh -- the configuration is declared once, and documented
# from that declaration.
#
# Each binary's variables live in one table (lib/config.h) that produces
# --help, the values and `--config-markdown`. This test holds the other ends:
#  - every binary accepts its own table (an integer default that does not
#    parse or lies outside its range makes --config-markdown fail);
#  - README's tables are exactly what the binaries generate
#    (`scripts/config-docs --check`: a changed default, range or help text
#    that README does not show fails here);
#  - every variable a binary lists in --help, and every one scripts/run
#    documents, is named in README;
#  - an integer outside its declared range is refused at start with the range
#    in the message, and a default given to the service is the table's (the
#    value SPOOL_SEGMENT_BYTES once had two of).
# Usage: test_config_docs.sh REPO_ROOT BUILD_DIR
. "$(dirname "$0")/../lib/common.sh"
ROOT=$1 BUILD=$2
BINS=("$BUILD/services/data-storage/homeiq-data-storage" "$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline"
      "$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion" "$BUILD/services/admin-api/homeiq-admin-api"
      "$BUILD/tools/homeiqctl/homeiqctl" "$BUILD/tools/ha-simulator/homeiq-ha-simulator")

for bin in "${BINS[@]}"; do
  n=$(basename "$bin")
  rows=$("$bin" --config-markdown 2>"$TEST_TMP/$n.err" | grep -c '^| `[A-Z]')
  check "$n --config-markdown: its table is valid and has rows ($rows)" test "$rows" -gt 0
done

python3 "$ROOT/scripts/config-docs" --check "$BUILD" "$ROOT/README.md" >"$TEST_TMP/docs.diff" 2>&1
RC=$?
check_eq "README's configuration tables are what the binaries generate (scripts/config-docs)" 0 $RC
[ $RC = 0 ] || head -40 "$TEST_TMP/docs.diff"

# The check above must be able to fail: a README with one default changed.
sed 's/^| `SPOOL_FSYNC_MS` | `100` |/| `SPOOL_FSYNC_MS` | `200` |/' "$ROOT/README.md" >"$TEST_TMP/README.md"
python3 "$ROOT/scripts/config-docs" --check "$BUILD" "$TEST_TMP/README.md" >"$TEST_TMP/bad.diff" 2>&1
check_eq "config-docs --check notices a README default that differs from the table" 1 $?
check "  ... and shows the line" grep -q '^-| `SPOOL_FSYNC_MS` | `200`' "$TEST_TMP/bad.diff"

for bin in "${BINS[@]}"; do
  vars=$("$bin" --help | sed -n '/^Configuration (environment variables):/,$p' | awk '/^  [A-Z]/ {print $1}')
  missing=""
  for v in $vars; do grep -q "\`$v\`" "$ROOT/README.md" || missing+=" $v"; done
  check_eq "README documents every variable of $(basename "$bin") --help" "" "${missing# }"
done
missing=""
for v in $("$ROOT/scripts/run" --help | awk '/^  [A-Z]/ {print $1}'); do
  grep -q "$v" "$ROOT/README.md" || missing+=" $v"
done
check_eq "README documents every variable of scripts/run --help" "" "${missing# }"

# Values come from the table: a value outside the declared range is refused,
# naming the range the table declares.
ING=${BINS[2]}
SPOOL_SEGMENT_BYTES=1000 DATA_DIR="$TEST_TMP/ing" WEBSOCKET_INGESTION_PORT=0 HOME_ASSISTANT_URL=none \
  timeout 20 "$ING" >"$TEST_TMP/range.log" 2>&1
check "ingestion refuses SPOOL_SEGMENT_BYTES below the table's range" \
  grep -q 'SPOOL_SEGMENT_BYTES=1000 is not an integer in \[65536, 4294967296\]' "$TEST_TMP/range.log"
finish
