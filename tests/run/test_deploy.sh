#!/usr/bin/env bash
# tests/run/test_deploy.sh -- validates deploy/ as far as this machine allows.
#
# Why: Docker cannot run here, so the compose file, Dockerfile and systemd
# units are checked statically but for real: `docker-compose config` (Debian's
# docker-compose 1.29, installed here without recommends -- no Docker engine --
# when missing and we are root), the compose structure (health checks,
# depends_on service_healthy, secrets only from .env), every environment
# variable the deploy files set being one the binary documents in --help (a
# typo would silently fall back to a default), the Dockerfile's runtime
# packages existing in Debian 12 and its COPY paths matching the CMake build,
# and the systemd units with `systemd-analyze verify` (no warnings allowed) and
# `systemd-analyze security --offline`.
# Usage: test_deploy.sh REPO_ROOT BUILD_DIR
. "$(dirname "$0")/../lib/common.sh"
ROOT=$1 BUILD=$2
D=$ROOT/deploy
BIN_storage=$BUILD/services/data-storage/homeiq-data-storage
BIN_enrich=$BUILD/services/enrichment-pipeline/homeiq-enrichment-pipeline
BIN_ingest=$BUILD/services/websocket-ingestion/homeiq-websocket-ingestion
BIN_ctl=$BUILD/tools/homeiqctl/homeiqctl
BIN_admin=$BUILD/services/admin-api/homeiq-admin-api

# ---- docker-compose --------------------------------------------------------
if ! command -v docker-compose >/dev/null && [ "$(id -u)" = 0 ] && [ "${DEPLOY_TEST_NO_INSTALL:-0}" != 1 ]; then
  echo "installing Debian's docker-compose (no recommends: no Docker engine)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq --no-install-recommends docker-compose >/dev/null 2>&1; }
fi
COMPOSE_ENV=(env -u HOME_ASSISTANT_URL -u HOME_ASSISTANT_TOKEN -u INFLUXDB_PASSWORD -u INFLUXDB_ADMIN_PASSWORD
             -u STORAGE_BACKEND -u TZ -u LOG_LEVEL -u LOG_FORMAT -u INFLUXDB_DATABASE -u INFLUXDB_USERNAME)
if command -v docker-compose >/dev/null; then
  "${COMPOSE_ENV[@]}" docker-compose --env-file "$D/.env.example" -f "$D/docker-compose.yml" config \
    >"$TEST_TMP/compose.yml" 2>"$TEST_TMP/compose-err.log"
  check_eq "docker-compose config accepts docker-compose.yml with .env.example" 0 $?
  : >"$TEST_TMP/empty.env"
  "${COMPOSE_ENV[@]}" docker-compose --env-file "$TEST_TMP/empty.env" -f "$D/docker-compose.yml" config \
    >/dev/null 2>"$TEST_TMP/compose-noenv.txt"
  RC=$?
  check "without secrets docker-compose refuses, naming the variable (exit $RC)" \
    bash -c "[ $RC -ne 0 ] && grep -q 'in deploy/.env' '$TEST_TMP/compose-noenv.txt'"
  RESOLVED=$TEST_TMP/compose.yml
else
  skip "docker-compose config: docker-compose not installed (scripts/install-deps installs it)"
  RESOLVED=$D/docker-compose.yml
fi

# Structure, on the resolved file (or the raw one): python3's yaml module.
if python3 -c 'import yaml' 2>/dev/null; then
  python3 - "$RESOLVED" >"$TEST_TMP/structure.txt" 2>&1 <<'PY'
import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
svcs = doc["services"]
ok = True
def bad(msg):
    global ok; ok = False; print("problem:", msg)
want = {"websocket-ingestion": ("8001", "enrichment-pipeline"),
        "enrichment-pipeline": ("8002", "data-storage"),
        "data-storage": ("8004", "influxdb"),
        "admin-api": ("8003", "data-storage")}
for name, (port, dep) in want.items():
    s = svcs.get(name) or {}
    if not s: bad(f"service {name} missing"); continue
    hc = " ".join(map(str, (s.get("healthcheck") or {}).get("test", [])))
    if f"127.0.0.1:{port}/health" not in hc: bad(f"{name}: healthcheck is not its /health on {port}: {hc}")
    d = s.get("depends_on") or {}
    if not isinstance(d, dict) or (d.get(dep) or {}).get("condition") != "service_healthy":
        bad(f"{name}: depends_on {dep} without condition service_healthy")
    if not any(str(p).split("/")[0].endswith(f"{port}:{port}") or (isinstance(p, dict) and str(p.get("target")) == port)
               for p in s.get("ports", [])):
        bad(f"{name}: port {port} not published")
    if "restart" not in s: bad(f"{name}: no restart policy")
if "healthcheck" not in (svcs.get("influxdb") or {}): bad("influxdb: no healthcheck")
print("ok" if ok else "FAILED")
PY
  cat "$TEST_TMP/structure.txt"
  check_eq "compose: 4 services + influxdb, health checks, depends_on service_healthy, ports" ok \
    "$(tail -n 1 "$TEST_TMP/structure.txt")"
else
  skip "compose structure: python3's yaml module missing (comes with docker-compose)"
fi
check "compose takes every secret from .env (no literal token/password)" \
  bash -c "! grep -nE '^ *[A-Z_]*(TOKEN|PASSWORD): *[^\$ ]' '$D/docker-compose.yml'"
check ".env.example documents the secrets" \
  bash -c "grep -q '^HOME_ASSISTANT_TOKEN=' '$D/.env.example' && grep -q '^INFLUXDB_PASSWORD=' '$D/.env.example'"

# documented VAR BINARY : the binary's --help lists VAR.
declare -A HELP_CACHE
documented() {
  [ -n "${HELP_CACHE[$2]:-}" ] || HELP_CACHE[$2]=$("$2" --help 2>/dev/null)
  grep -qw -- "$1" <<<"${HELP_CACHE[$2]}"
}
# Every variable set for a HomeIQ service in the compose file / units is in its --help.
compose_vars() { # compose_vars SERVICE : environment keys of that service in the resolved file
  python3 -c 'import sys,yaml; e=yaml.safe_load(open(sys.argv[1]))["services"][sys.argv[2]].get("environment") or {}
print("\n".join(e if isinstance(e, dict) else [x.split("=")[0] for x in e]))' "$RESOLVED" "$1" 2>/dev/null
}
for pair in "data-storage:$BIN_storage" "enrichment-pipeline:$BIN_enrich" "websocket-ingestion:$BIN_ingest" \
            "admin-api:$BIN_admin" "homeiqctl:$BIN_ctl"; do
  svc=${pair%%:*} bin=${pair#*:}
  [ -x "$bin" ] || continue
  undocumented=""
  for v in $(compose_vars "$svc"); do
    [ "$v" = TZ ] && continue # libc's, documented by enrichment
    documented "$v" "$bin" || undocumented+=" $v"
  done
  check_eq "compose: every variable of $svc is one it documents in --help" "" "${undocumented# }"
done

# ---- Dockerfile --------------------------------------------------------------
check_eq "Dockerfile: two stages on debian:12-slim" 2 "$(grep -c '^FROM debian:12-slim AS ' "$D/Dockerfile")"
RUNTIME_PKGS=$(awk '/^FROM .* AS runtime/ {r=1} r && /apt-get install/ {p=1} p {print} p && !/\\$/ {p=0}' "$D/Dockerfile" |
  tr ' \\' '\n\n' | grep -E '^lib|^zlib|^ca-certificates$|^curl$')
# One apt-cache call (each costs about a second): the packages it knows.
KNOWN=$(apt-cache show --no-all-versions $RUNTIME_PKGS 2>/dev/null | sed -n 's/^Package: //p')
missing=""
for p in $RUNTIME_PKGS; do grep -qx "$p" <<<"$KNOWN" || missing+=" $p"; done
check_eq "Dockerfile: runtime packages exist in Debian 12 ($(echo $RUNTIME_PKGS | wc -w))" "" "${missing# }"
if command -v readelf >/dev/null && [ -x "$BIN_ingest" ]; then
  # Every library the binaries link directly (ELF NEEDED) is in a runtime package.
  notcovered=""
  for lib in $(for b in "$BIN_storage" "$BIN_enrich" "$BIN_ingest" "$BIN_admin" "$BIN_ctl"; do
                 readelf -d "$b" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p'; done | sort -u); do
    path=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64|x86_64|64bit/ {print $NF; exit}')
    [ -z "$path" ] && path=$(ldconfig -p | awk -v l="$lib" '$1 == l {print $NF; exit}')
    pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
    [ -z "$pkg" ] && pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
    case "$pkg" in libc6|libgcc-s1|libasan*|libubsan*) continue ;; esac
    # libcrypto.so.3 comes from libssl3
    grep -qx "$pkg" <<<"$RUNTIME_PKGS" || notcovered+=" $lib(${pkg:-?})"
  done
  check_eq "Dockerfile: runtime stage installs every library the binaries link" "" "${notcovered# }"
else
  skip "Dockerfile runtime libraries: readelf (binutils) missing"
fi
for p in $(grep -oE '/build/[a-z/-]+/homeiq[a-z-]*' "$D/Dockerfile" | sort -u); do
  check "Dockerfile: $p exists in a CMake build" test -x "$BUILD${p#/build}"
done

# ---- systemd units -----------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
  mkdir -p "$TEST_TMP/units"
  cp "$D"/systemd/*.service "$D"/systemd/*.target "$TEST_TMP/units/"
  # Point ExecStart at the built binaries (verify checks that they exist).
  sed -i "s|/usr/local/bin/homeiq-data-storage|$BIN_storage|; s|/usr/local/bin/homeiq-enrichment-pipeline|$BIN_enrich|;
          s|/usr/local/bin/homeiq-websocket-ingestion|$BIN_ingest|; s|/usr/local/bin/homeiq-admin-api|$BIN_admin|" \
    "$TEST_TMP"/units/*.service
  systemd-analyze verify "$TEST_TMP"/units/*.service "$TEST_TMP"/units/*.target >"$TEST_TMP/verify.txt" 2>&1
  RC=$?
  cat "$TEST_TMP/verify.txt"
  check_eq "systemd-analyze verify: exit 0" 0 "$RC"
  check_eq "systemd-analyze verify: no warnings" "" "$(grep -v '^$' "$TEST_TMP/verify.txt")"
  for u in "$TEST_TMP"/units/*.service; do
    n=$(basename "$u")
    for key in Restart=on-failure DynamicUser=yes ProtectSystem=strict NoNewPrivileges=yes; do
      check "$n has $key" grep -qx "$key" "$u"
    done
    EXPOSURE=$(systemd-analyze security --offline=yes "$u" 2>/dev/null | sed -n 's/.*Overall exposure level for .*: \([0-9.]*\).*/\1/p')
    check "$n: systemd-analyze security exposure ${EXPOSURE:-?} < 2.0" \
      awk -v e="${EXPOSURE:-99}" 'BEGIN { exit !(e < 2.0) }'
    bin=$(sed -n 's/^ExecStart=//p' "$u")
    undocumented=""
    for v in $(sed -n 's/^Environment=\([A-Z_]*\)=.*/\1/p' "$u"); do documented "$v" "$bin" || undocumented+=" $v"; done
    check_eq "$n: every Environment= variable is documented by the binary" "" "${undocumented# }"
  done
else
  skip "systemd units: systemd-analyze not installed (Debian package systemd)"
fi
# ---- README ------------------------------------------------------------------
# README's configuration tables (every variable, default and range of every
# binary, and of scripts/run): tests/run/test_config_docs.sh.
finish
