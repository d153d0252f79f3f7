#!/usr/bin/env python3
"""tests/admin/influx_export.py -- every point of one database of a real influxd
as line protocol, field types kept (SHOW FIELD KEYS: a float 21.0 comes back
from /query as 21 and must be written back as a float).

Why: Debian's influxdb package has no influx_inspect, and the upgrade test
(test_influx_feed.sh) loads a store written by an earlier data-storage
(tests/admin/fixtures/influx_feed_v0.lp, made with make_influx_feed_fixture.sh).

Usage: influx_export.py INFLUX_URL DATABASE > out.lp   (the autogen retention policy)"""
import json
import sys
import urllib.parse
import urllib.request

url, db = sys.argv[1], sys.argv[2]


def q(sql):
    u = url + "/query?" + urllib.parse.urlencode({"db": db, "epoch": "ns", "q": sql})
    return json.load(urllib.request.urlopen(u))["results"][0].get("series") or []


def esc_key(s):
    return s.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def field(v, t):
    if t == "string":
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if t == "integer":
        return f"{int(v)}i"
    if t == "boolean":
        return "true" if v else "false"
    return repr(float(v))


for m in [r[0] for s in q("SHOW MEASUREMENTS") for r in s["values"]]:
    types = {r[0]: r[1] for s in q(f'SHOW FIELD KEYS FROM "{m}"') for r in s["values"]}
    for s in q(f'SELECT * FROM "{m}" GROUP BY *'):
        tags = "".join(f",{esc_key(k)}={esc_key(v)}" for k, v in sorted((s.get("tags") or {}).items()) if v)
        cols = s["columns"]
        for row in s["values"]:
            fs = ",".join(f"{esc_key(c)}={field(v, types[c])}" for c, v in zip(cols[1:], row[1:]) if v is not None)
            print(f"{esc_key(m)}{tags} {fs} {row[0]}")
