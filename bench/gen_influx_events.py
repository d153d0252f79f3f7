#!/usr/bin/env python3
"""bench/gen_influx_events.py -- N state_changed events over ENTITIES entities
and 30 days, written straight into an influxd database as data-storage would
have written them (schema homeiq): each event's point in home_assistant_events
(influx_points.c's tags and fields, the record JSON), its homeiq_feed point
(influx_query.c: time = commit sequence, here the event's own microsecond,
as if stored live), and at the end the entity summary and totals
(influx_summary.c's lines), so data-storage starts on it reading O(entities)
and the tail continues after the generated head.

Why straight into influxd: through data-storage's API 10 million events cost
~3 CPU-hours on this machine (storage + influxd per event), for a store the
page only reads. Used by bench/page_ready.sh (BENCH_PAGE_INFLUXD_DIR).

Usage: gen_influx_events.py INFLUX_URL DATABASE N ENTITIES NOW_S
Events as page_ready.sh posts them: entity k % ENTITIES, every tenth a
binary_sensor (on/off, value 1/0), the others sensors (15.0..34.9)."""
import datetime
import http.client
import json
import sys
import urllib.parse

url, db, n, nent, now = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
u = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
conn.request("POST", "/query", urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}),
             {"Content-Type": "application/x-www-form-urlencoded"})
r = conn.getresponse(); r.read()
if r.status != 200:
    sys.exit(f"CREATE DATABASE: HTTP {r.status}")
path = "/write?" + urllib.parse.urlencode({"db": db, "precision": "ns"})


def lp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tfmt(us):
    return datetime.datetime.fromtimestamp(us // 1000000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + \
        ".%06dZ" % (us % 1000000)


span_us = 30 * 86400 * 1000000
step = span_us // n
t0 = now * 1000000 - span_us
ents = {}   # entity -> [domain, count, last_ns, state, state_ns, changed_ns, numeric, mixed]
body, lines, seq = [], 0, 0
for k in range(n):
    e = k % nent
    if e % 10 == 9:
        ent, dom = f"binary_sensor.bench_{e}", "binary_sensor"
        st = "on" if (k // 7) % 2 else "off"
        val = 1.0 if st == "on" else 0.0
    else:
        ent, dom = f"sensor.bench_{e}", "sensor"
        st = "%.1f" % (15 + (k % 200) / 10)
        val = float(st)
    us = t0 + k * step
    ns = us * 1000
    tf = tfmt(us)
    eid = "%032x" % (k + 1)
    attrs = {"friendly_name": ent}
    rec = {"event_type": "state_changed", "entity_id": ent, "domain": dom, "origin": "LOCAL", "time_fired": tf,
           "context_id": f"gen-{k}", "state": st, "value": val, "attributes": attrs}
    rj = json.dumps(rec, separators=(",", ":"), ensure_ascii=False)
    tags = f"domain={dom},entity_id={ent},event_type=state_changed"
    body.append(f"home_assistant_events,{tags} event_id=\"{eid}\",stored_at=\"{tf}\",record={lp_str(rj)},"
                f"state={lp_str(st)},value={val!r},context_id=\"gen-{k}\","
                f"attributes={lp_str(json.dumps(attrs, separators=(',', ':')))} {ns}\n")
    seq = us   # the commit sequence: as if stored live, in time order
    body.append(f"homeiq_feed,{tags} event_id=\"{eid}\",t={ns}i {seq * 1000}\n")
    x = ents.get(ent)
    if x is None:
        x = ents[ent] = [dom, 0, 0, None, 0, 0, False, False]
    x[1] += 1
    x[2] = ns
    if any(c.isdigit() for c in st):
        x[6] = True
    else:
        x[7] = True   # a value under a state without a digit (on/off)
    if x[3] != st:
        x[3], x[5] = st, ns
    x[4] = ns
    if len(body) >= 10000 or k == n - 1:
        conn.request("POST", path, "".join(body).encode(), {"Content-Type": "text/plain; charset=utf-8"})
        r = conn.getresponse(); msg = r.read()
        if r.status != 204:
            sys.exit(f"write at event {k}: HTTP {r.status} {msg[:300]!r}")
        body = []
        if (k + 1) % 1000000 < 5000:
            print(f"[gen] {k + 1} events", file=sys.stderr, flush=True)
snap = now * 1000000000
summ = []
for ent, (dom, cnt, last_ns, st, st_ns, ch_ns, num, mixed) in sorted(ents.items()):
    summ.append(f"homeiq_summary,entity_id={ent} domain=\"{dom}\",count={cnt}i,last_ns={last_ns}i,state={lp_str(st)},"
                f"state_ns={st_ns}i,changed_ns={ch_ns}i,numeric={'true' if num else 'false'},"
                f"mixed={'true' if mixed else 'false'},seq={seq}i {snap}\n")
summ.append(f"homeiq_totals seq={seq}i,events={n}i,dead=0i,dead_ns={seq * 1000}i {snap}\n")
conn.request("POST", path, "".join(summ).encode(), {"Content-Type": "text/plain; charset=utf-8"})
r = conn.getresponse(); msg = r.read()
if r.status != 204:
    sys.exit(f"summary write: HTTP {r.status} {msg[:300]!r}")
print(f"[gen] {n} events, {len(ents)} entities, head {seq}", file=sys.stderr)
