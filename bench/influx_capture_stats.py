#!/usr/bin/env python3
"""bench/influx_capture_stats.py CAPTURE EVENTS -- what a capture (bench/influx_capture.py) holds, per 1,000 events:
requests by kind (path + rp), lines and bytes by measurement, and whether each line's tags are sorted by key."""
import collections
import re
import sys
import urllib.parse


def read(path):
    with open(path, "rb") as f:
        while True:
            h = f.readline()
            if not h:
                return
            m, p, n, enc = h.decode().rstrip("\n").split("\t")
            body = f.read(int(n))
            f.read(1)
            yield m, p, body, enc


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
            qq = q.get("q", [""])[0] or urllib.parse.parse_qs(body.decode(errors="replace")).get("q", [""])[0]
            kind += " " + qq.split(" ")[0]
        req[kind] += 1
        params[u.path + " " + ",".join(sorted(k for k in q if k != "q"))] += 1
        if u.path != "/write":
            continue
        ms = collections.Counter()
        split = []
        for piece in body.split(b"\n"):   # a newline inside the feed point's string field continues the line
            if split and not re.match(rb"^[a-z_]+[, ]", piece):
                split[-1] += b"\n" + piece
            elif piece:
                split.append(piece)
        for ln in split:
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
