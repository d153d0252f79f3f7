# HomeIQ -- the commands a newcomer types. CMake does the building.
#   make         build (release, in build/)
#   make test    install deps, build release + ASan/UBSan, run every test in both; fails when
#                any test was skipped (HOMEIQ_ALLOW_SKIP=1 accepts skips on purpose; CI never does)
#   make run     install deps, build, run simulator + 3 services on SQLite (Ctrl-C stops all)
#   make bench   end-to-end benchmark (writes bench/results/ and docs/BENCHMARKS.md)
#   make bench-admin  the dashboard's targets: 30-day series, entity list, SSE at 1,000 events/s, RSS
#   make bench-page   the dashboard's page ready with 10M events stored (real headless Chromium)
#   make bench-scale  ClickHouse + replicas: 1 vs 2 storage replicas, the per-core cost model (issue 18)
#   make bench-influx-first  InfluxDB: the first entity list/stats after a restart, with and without the summary
#   make bench-whitespace  compact vs spaced JSON: enrichment's CPU per event both ways (issue 15)
#   make bench-storage  data-storage alone on SQLite: the burst's records, CPU us/event, bytes written
#                (BINS="old new" compares two binaries back to back; issue 15)
#   make bench-cpu  CPU µs/event per service in the SQLite burst (bench/cpu_per_event.sh [OLD_BUILD NEW_BUILD])
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
BUILD ?= build
ASAN_BUILD ?= build-asan
CTEST_ARGS ?= --timeout 900

FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60

.PHONY: all build deps test test-release test-asan run bench bench-admin bench-page bench-scale bench-influx-first bench-whitespace bench-storage bench-cpu bench-purge bench-year clean fuzz

all: build

deps:
	@scripts/install-deps

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

test: deps
	@$(MAKE) --no-print-directory test-release
	@$(MAKE) --no-print-directory test-asan
	@echo "make test: all tests passed (release and ASan+UBSan builds)"

test-release: build
	@echo "== tests: release build =="
	@cd $(BUILD) && $(CURDIR)/tests/lib/ctest_strict.sh --output-on-failure $(CTEST_ARGS)

test-asan:
	@echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer build =="
	@cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHOMEIQ_SANITIZE=ON >/dev/null
	@cmake --build $(ASAN_BUILD) -j$(JOBS)
	@cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:exitcode=23 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		$(CURDIR)/tests/lib/ctest_strict.sh --output-on-failure $(CTEST_ARGS)

run: deps build
	@scripts/run

bench-admin: deps build
	@bench/admin.sh

# Page ready with 10M events (SQLite; BENCH_PAGE_BACKEND=influxdb: 1M by default)
bench-page: deps build
	@bench/page_ready.sh

# Issue 18: committed events/s SQLite vs ClickHouse and 1 vs 2 storage replicas behind nginx,
# then CPU per event per tier (single node, then the 2-shard cluster): docs/BENCHMARKS.md
bench-scale: deps build
	@bench/clickhouse.sh
	@bench/scale_cost.sh
	@SCALE_COST_CLUSTER=1 bench/scale_cost.sh

bench-influx-first: deps build
	@bench/influx_first_read.sh

bench-whitespace: deps build
	@bench/whitespace.sh

bench-storage: deps build
	@bench/storage_burst.sh $(BINS)

bench-cpu: deps build
	@bench/cpu_per_event.sh

# Issue 13: POST latency at 1,000 events/s while a 2-million-event SQLite store is purged
# (RETENTION_DAYS=30), with the counts checked; and the file size of one simulated year
# kept whole and with RETENTION_DAYS=30 (~20 GB of disk under YEAR_DIR, ~20 min).
bench-purge: deps build
	@OLD=$${OLD:-2000000} SECONDS_=$${SECONDS_:-30} bench/purge_latency.sh

bench-year: deps build
	@bench/year_size.sh

bench: deps
	@scripts/install-deps --bench
	@$(MAKE) --no-print-directory build
	@bench/run

# Fuzzing (clang + libFuzzer): every harness in tests/fuzz for FUZZ_SECONDS each,
# starting from (and adding to) its corpus in a scratch copy; findings land in
# $(FUZZ_BUILD)/findings/. Commit new small corpus files that raise coverage.
fuzz:
	@command -v clang >/dev/null || { echo "make fuzz needs clang (scripts/install-deps)"; exit 1; }
	@CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHOMEIQ_FUZZ=ON >/dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_json_scan fuzz_enrich_fastpath fuzz_spool_recovery fuzz_url fuzz_dead_letter fuzz_storage_text \
	  fuzz_backfill_row fuzz_ha_config_yaml fuzz_config_env fuzz_ws_frames fuzz_lineproto fuzz_ws_client fuzz_ha_message \
	  fuzz_query_params
	@tests/fuzz/run $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
