#!/usr/bin/env bash
# tests/run/test_deploy_scale.sh REPO_ROOT BUILD_DIR -- the scale-out deploy files
# of issue 18, as far as this machine allows (no Docker engine here):
#  - deploy/docker-compose.scale.yml passes `docker-compose config`;
#  - it is the layout the native run (deploy/scale/run-local.sh) and the fault
#    test (tests/e2e/test_e2e_scale_cluster.sh) start: 2 enrichment + 2 storage
#    replicas behind one nginx (deploy/scale/nginx.conf, every placeholder filled
#    in), storage on the ClickHouse cluster "homeiq" with the same shards and
#    replicas (2 + 1) as run-local.sh's (clickhouse_cluster_start in
#    tests/lib/clickhouse.sh, which the cluster tests use too), ZooKeeper, each
#    server's macros naming its shard and replica;
#  - every variable it sets for a HomeIQ service is one the binary documents.
# The native layout itself runs in run_scale_local (run-local.sh --check).
. "$(dirname "$0")/../lib/common.sh"
ROOT=$1 BUILD=$2
D=$ROOT/deploy
command -v docker-compose >/dev/null || skip "docker-compose not installed (scripts/install-deps installs it)"
python3 -c 'import yaml' 2>/dev/null || skip "python3's yaml module missing (python3-yaml, scripts/install-deps)"
[ "$SKIPS" = 0 ] || finish

(cd "$D" && docker-compose -f docker-compose.scale.yml config) >"$TEST_TMP/scale.yml" 2>"$TEST_TMP/config.err"
check_eq "docker-compose config accepts docker-compose.scale.yml" 0 $?
cat "$TEST_TMP/config.err"

python3 - "$TEST_TMP/scale.yml" "$D/scale/nginx.conf" "$ROOT/tests/lib/clickhouse.sh" "$D/scale/clickhouse" \
  >"$TEST_TMP/structure.txt" 2>&1 <<'PY'
import re, sys, yaml, xml.etree.ElementTree as ET
compose, nginx_conf, run_local, ch_dir = sys.argv[1:5]
svcs = yaml.safe_load(open(compose))["services"]
ok = True
def bad(msg):
    global ok; ok = False; print("problem:", msg)
def env(name): return svcs.get(name, {}).get("environment") or {}
for name in ["enrichment-1", "enrichment-2", "storage-1", "storage-2", "lb", "zookeeper", "ch1", "ch2", "ch3"]:
    if name not in svcs: bad(f"service {name} missing")
for name in ["storage-1", "storage-2"]:
    e = env(name)
    if e.get("STORAGE_BACKEND") != "clickhouse": bad(f"{name}: STORAGE_BACKEND is not clickhouse")
    if e.get("CLICKHOUSE_CLUSTER") != "homeiq": bad(f"{name}: CLICKHOUSE_CLUSTER is not homeiq")
    urls = sorted(u.strip() for u in str(e.get("CLICKHOUSE_URL", "")).split(","))
    if urls != ["http://ch1:8123", "http://ch2:8123"]: bad(f"{name}: CLICKHOUSE_URL is not shard 1's two servers: {urls}")
    if "/health" not in " ".join(map(str, svcs[name].get("healthcheck", {}).get("test", []))): bad(f"{name}: no /health check")
for name in ["enrichment-1", "enrichment-2"]:
    if env(name).get("DATA_STORAGE_URL") != "http://lb:8004": bad(f"{name}: DATA_STORAGE_URL is not the balancer")
# the balancer: deploy/scale/nginx.conf with every placeholder filled in
lb = svcs.get("lb", {})
if not any(str(v).startswith(("./scale/nginx.conf", "/")) and "nginx.conf" in str(v) for v in
           [x if isinstance(x, str) else x.get("source", "") for x in lb.get("volumes", [])]):
    bad("lb does not mount deploy/scale/nginx.conf")
cmd = " ".join(map(str, lb.get("command", [])))
placeholders = set(re.findall(r"@([A-Z_0-9]+)@", open(nginx_conf).read()))
filled = set(re.findall(r"s\|@([A-Z_0-9]+)@\|", cmd))
if placeholders != filled: bad(f"lb fills {sorted(filled)}, nginx.conf has {sorted(placeholders)}")
for tier, port in (("ENRICHMENT", 8002), ("STORAGE", 8004)):
    for i in (1, 2):
        want = f"@{tier}_{i}@|{tier.lower()}-{i}:{port}|" if tier == "ENRICHMENT" else f"@{tier}_{i}@|storage-{i}:{port}|"
        if want not in cmd: bad(f"lb: {tier}_{i} is not {want}")
# the cluster: cluster.xml's shards = run-local.sh's (replicas per shard), macros per server
def shape_xml(root): return [len(s.findall("replica")) for s in root.find("remote_servers/homeiq").findall("shard")]
cluster = ET.parse(f"{ch_dir}/cluster.xml").getroot()
compose_shape = shape_xml(cluster)
m = re.search(r"<remote_servers><\$c>(.*?)</\$c></remote_servers>", open(run_local).read(), re.S)
native_shape = [s.count("<replica>") for s in re.findall(r"<shard>(.*?)</shard>", m.group(1), re.S)] if m else None
if compose_shape != native_shape: bad(f"shards x replicas: compose {compose_shape}, clickhouse_cluster_start {native_shape}")
hosts = [[r.findtext("host") for r in s.findall("replica")] for s in cluster.find("remote_servers/homeiq").findall("shard")]
for si, shard in enumerate(hosts, 1):
    for h in shard:
        vols = " ".join(map(str, svcs.get(h, {}).get("volumes", [])))
        mf = re.search(r"scale/clickhouse/(macros-ch\d\.xml)", vols)
        if "cluster.xml" not in vols or not mf: bad(f"{h}: cluster.xml / macros not mounted"); continue
        mac = ET.parse(f"{ch_dir}/{mf.group(1)}").getroot().find("macros")
        if int(mac.findtext("shard")) != si or mac.findtext("replica") != h:
            bad(f"{h}: macros say shard {mac.findtext('shard')} replica {mac.findtext('replica')}, cluster.xml shard {si}")
if cluster.findtext("zookeeper/node/host") != "zookeeper": bad("cluster.xml: zookeeper is not the zookeeper service")
print(f"shards x replicas {compose_shape}")
print("ok" if ok else "FAILED")
PY
cat "$TEST_TMP/structure.txt"
check_eq "compose = the native layout: 2+2 replicas behind deploy/scale/nginx.conf, cluster homeiq (2 shards, 2+1 replicas), macros, ZooKeeper" \
  ok "$(tail -n 1 "$TEST_TMP/structure.txt")"

# the same settings per tier as the native layout that run_scale_local runs (deploy/scale/run-local.sh):
# every variable run-local.sh gives a storage / enrichment replica (but host-specific ones: ports, data
# directories, the URLs of its neighbours) is set to the same value in compose, and the homes' ingestion
# settings are in compose's header (it runs no ingestion: those sit next to each HA)
python3 - "$TEST_TMP/scale.yml" "$D/scale/run-local.sh" "$D/docker-compose.scale.yml" >"$TEST_TMP/env.txt" 2>&1 <<'PY'
import re, shlex, sys, yaml
compose, run_local, compose_src = sys.argv[1:4]
svcs = yaml.safe_load(open(compose))["services"]
src = open(run_local).read()
host = {"DATA_DIR", "DATA_STORAGE_PORT", "ENRICHMENT_PIPELINE_PORT", "WEBSOCKET_INGESTION_PORT", "CLICKHOUSE_URL",
        "DATA_STORAGE_URL", "ENRICHMENT_PIPELINE_URL", "HOME_ASSISTANT_URL", "HOME_ASSISTANT_TOKEN", "HOMEIQ_HOME_ID"}
def native(name):  # KEY=VALUE of run-local.sh's `start_bg NAME... env ... "$BIN"`
    m = re.search(r"start_bg " + name + r"\S* env (.*?)\"\$[A-Z]+\"", src, re.S)
    if not m: return None
    words = shlex.split(m.group(1).replace("\\\n", " "), posix=True)
    return {w.split("=", 1)[0]: w.split("=", 1)[1] for w in words if "=" in w}
ok = True
for tier, svc in (("storage", "storage-1"), ("enrichment", "enrichment-1")):
    n = native(tier)
    if n is None: print(f"problem: run-local.sh starts no {tier}"); ok = False; continue
    e = {k: str(v) for k, v in (svcs[svc].get("environment") or {}).items()}
    for k, v in sorted(n.items()):
        if k in host: continue
        if e.get(k) != v: print(f"problem: {tier}: run-local.sh {k}={v}, compose {k}={e.get(k)}"); ok = False
ing = native("ing_")
header = open(compose_src).read().split("version:")[0]
for k, v in sorted((ing or {}).items()):
    if k in host: continue
    if f"{k}={v}" not in header: print(f"problem: ingestion: run-local.sh {k}={v} not in compose's header"); ok = False
print("ok" if ok and ing is not None else "FAILED")
PY
cat "$TEST_TMP/env.txt"
check_eq "compose sets what run-local.sh (run_scale_local) sets per tier" ok "$(tail -n 1 "$TEST_TMP/env.txt")"

# every variable set for a HomeIQ service is one its binary documents in --help
compose_vars() { python3 -c 'import sys,yaml; e=yaml.safe_load(open(sys.argv[1]))["services"][sys.argv[2]].get("environment") or {}
print("\n".join(e if isinstance(e, dict) else [x.split("=")[0] for x in e]))' "$TEST_TMP/scale.yml" "$1"; }
for pair in storage-1:services/data-storage/homeiq-data-storage storage-2:services/data-storage/homeiq-data-storage \
            enrichment-1:services/enrichment-pipeline/homeiq-enrichment-pipeline; do
  svc=${pair%%:*} bin=$BUILD/${pair#*:}
  help=$("$bin" --help 2>/dev/null)
  undocumented=""
  for v in $(compose_vars "$svc"); do grep -qw -- "$v" <<<"$help" || undocumented+=" $v"; done
  check_eq "compose: every variable of $svc is one its binary documents in --help" "" "${undocumented# }"
done
finish
