#!/usr/bin/env python3
"""bench/influx_capture_stats.py CAPTURE EVENTS -- what a capture (bench/influx_capture.py) holds, per 1,000 events:
requests by kind (path + rp), lines and bytes by measurement, and whether each line's tags are sorted by key."""
import collections
import sys
import urllib.parse

from influx_capture_file import query_text, read, split_lines


def main():
    ev = int(sys.argv[2]) / 1000
    req = collections.Counter()
    lines = collections.Counter()
    byts = collections.Counter()
    unsorted = collections.Counter()
    params = collections.Counter()
    sizes = collections.defaultdict(list)
    for m, p, body, enc in read(sys.argv[1]):
        u = urllib.parse.urlparse(p)
        q = urllib.parse.parse_qs(u.query)
        kind = u.path + (" rp=" + q["rp"][0] if "rp" in q else "")
        if u.path == "/query":
            kind += " " + query_text(u, body).split(" ")[0]
        req[kind] += 1
        params[u.path + " " + ",".join(sorted(k for k in q if k != "q"))] += 1
        if u.path != "/write":
            continue
        ms = collections.Counter()
        for ln in split_lines(body):
            # measurement,tags fields time -- escaped commas/spaces are rare in HomeIQ's series keys
            key = ln.split(b" ", 1)[0]
            parts = key.split(b",")
            meas = parts[0].decode()
            tk = [t.split(b"=", 1)[0] for t in parts[1:]]
            if tk != sorted(tk):
                unsorted[meas] += 1
            lines[meas] += 1
            byts[meas] += len(ln) + 1
            ms[meas] += 1
        sizes[kind].append(sum(ms.values()))
    print(f"per 1,000 events ({ev * 1000:.0f} events)")
    for k, v in req.most_common():
        s = sizes.get(k)
        extra = f"  lines/request median {sorted(s)[len(s) // 2]} max {max(s)}" if s else ""
        print(f"  requests {k}: {v / ev:.2f}  (total {v}){extra}")
    for k, v in params.most_common():
        print(f"  params {k}: {v}")
    for k, v in lines.most_common():
        print(f"  lines {k}: {v / ev:.1f}, bytes {byts[k] / ev / 1000:.1f} KB, unsorted-tag lines {unsorted[k]}")


main()
