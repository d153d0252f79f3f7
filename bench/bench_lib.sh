# bench/bench_lib.sh -- what a bench script that runs the whole house starts
# with (sourced, after `set -uo pipefail`): ROOT, BUILD (default build/), the
# test harness (tests/lib/common.sh: free ports, start_bg, stop_pid, cleanup),
# no sanitizer options, quiet services, and the five programs' paths.
#
# Why one file: admin.sh and page_ready.sh started the same way, line for
# line; a benchmark is not a test, so it ends without `finish` and its exit
# trap must not count sanitizer reports of a deliberately killed process.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$ROOT/build}
. "$ROOT/tests/lib/common.sh"
trap 'SANITIZER_FAILED=0; cleanup' EXIT   # a benchmark, not a test: it ends without finish
unset ASAN_OPTIONS UBSAN_OPTIONS
export LOG_LEVEL=warn
SIM=$BUILD/tools/ha-simulator/homeiq-ha-simulator ING=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
ENR=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline STO=$BUILD/services/data-storage/homeiq-data-storage
ADM=$BUILD/services/admin-api/homeiq-admin-api
