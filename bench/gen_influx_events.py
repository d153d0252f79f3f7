#!/usr/bin/env python3
"""bench/gen_influx_events.py -- N state_changed events over ENTITIES entities
and 30 days, written straight into an influxd database as data-storage would
have written them (schema homeiq): each event's point in home_assistant_events
(influx_points.c's tags and fields, the record JSON), its homeiq_feed point
in the per-event form (influx_feed.h: time = commit sequence, here the event's
own microsecond, as if stored live; data-storage writes batch points since
session 8 and reads both forms, so a generated store continues with those),
and at the end the entity summary and totals
(influx_summary.c's lines), so data-storage starts on it reading O(entities)
and the tail continues after the generated head.

Why straight into influxd: through data-storage's API 10 million events cost
~3 CPU-hours on this machine (storage + influxd per event), for a store the
page only reads. Used by bench/page_ready.sh (BENCH_PAGE_INFLUXD_DIR).

Usage: gen_influx_events.py INFLUX_URL DATABASE N ENTITIES NOW_S
Events as page_ready.sh posts them: entity k % ENTITIES, every tenth a
binary_sensor (on/off, value 1/0), the others sensors (15.0..34.9).

Resumable: the events are a function of (N, ENTITIES, NOW_S) and written in
order, and the summary (at time NOW_S) is written every SUMMARY_EVERY events,
so a run stopped at any point leaves a consistent store (data-storage re-applies
the feed after the summary) and the next run with the same arguments goes on
after the last event written (the last generated feed point, time <= NOW_S),
rewriting a few identical points. Summaries written later by data-storage
itself (a house run on the partial store) are deleted on resume, so the next
restore reads the generator's and re-applies everything after it from the
feed. A complete store is left untouched."""
import datetime
import http.client
import json
import os
import sys
import time
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
SUMMARY_EVERY = int(os.environ.get("GEN_SUMMARY_EVERY", "250000"))


def query(q):
    conn.request("POST", "/query?" + urllib.parse.urlencode({"db": db}), urllib.parse.urlencode({"q": q}),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    r = conn.getresponse(); body = r.read()
    if r.status != 200:
        sys.exit(f"{q}: HTTP {r.status} {body[:300]!r}")
    return json.loads(body)


snap = now * 1000000000
last = query(f'SELECT last(event_id) FROM homeiq_feed WHERE time <= {snap}')
rows = (last["results"][0].get("series") or [{}])[0].get("values") or []
k0 = int(rows[0][1], 16) if rows else 0   # event_id = k + 1: the next event to write
if k0 >= n:
    print(f"[gen] the store holds all {n} events already", file=sys.stderr)
    sys.exit(0)
if k0:
    print(f"[gen] resuming after event {k0}", file=sys.stderr)
    query(f"DELETE FROM homeiq_totals WHERE time > {snap}")
    query(f"DELETE FROM homeiq_summary WHERE time > {snap}")


def lp_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def tfmt(us):
    return datetime.datetime.fromtimestamp(us // 1000000, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + \
        ".%06dZ" % (us % 1000000)


span_us = 30 * 86400 * 1000000
step = span_us // n
t0 = now * 1000000 - span_us
ents = {}   # entity -> [domain, count, last_ns, state, state_ns, changed_ns, numeric, mixed]
body, seq = [], 0


def write(lines, what):
    data = "".join(lines).encode()
    for attempt in range(20):   # influxd's own write timeout under load (500 "timeout"): the same body again
        conn.request("POST", path, data, {"Content-Type": "text/plain; charset=utf-8"})
        r = conn.getresponse(); msg = r.read()
        if r.status == 204:
            return
        if r.status < 500:
            break
        print(f"[gen] write {what}: HTTP {r.status} {msg[:200]!r}, again in 5 s", file=sys.stderr, flush=True)
        time.sleep(5)
    sys.exit(f"write {what}: HTTP {r.status} {msg[:300]!r}")


def summary(upto):
    summ = []
    for ent, (dom, cnt, last_ns, st, st_ns, ch_ns, num, mixed) in sorted(ents.items()):
        summ.append(f"homeiq_summary,entity_id={ent} domain=\"{dom}\",count={cnt}i,last_ns={last_ns}i,state={lp_str(st)},"
                    f"state_ns={st_ns}i,changed_ns={ch_ns}i,numeric={'true' if num else 'false'},"
                    f"mixed={'true' if mixed else 'false'},seq={seq}i {snap}\n")
    summ.append(f"homeiq_totals seq={seq}i,events={upto}i,dead=0i,dead_ns={seq * 1000}i {snap}\n")
    write(summ, "summary")


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
    if k < k0:   # written by an earlier run: only counted into the summary
        seq = us
        x = ents.get(ent)
        if x is None:
            x = ents[ent] = [dom, 0, 0, None, 0, 0, False, False]
        x[1] += 1
        x[2] = x[4] = ns
        if any(c.isdigit() for c in st): x[6] = True
        else: x[7] = True
        if x[3] != st: x[3], x[5] = st, ns
        continue
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
        write(body, f"at event {k}")
        body = []
        if (k + 1) % SUMMARY_EVERY < 5000 or k == n - 1:   # the store is consistent up to here
            summary(k + 1)
            print(f"[gen] {k + 1} events", file=sys.stderr, flush=True)
print(f"[gen] {n} events, {len(ents)} entities, head {seq}", file=sys.stderr)
