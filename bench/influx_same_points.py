#!/usr/bin/env python3
"""bench/influx_same_points.py -- the points HomeIQ's burst stored in InfluxDB, read back as line protocol and
written again by a plain batched writer: the reference of issue 15 ("influxd ingesting the SAME POINTS written
directly in batches of 5,000").

Why: bench/influx_plain.py writes synthetic points of roughly HomeIQ's shape, but an easier one (session 9: 5 tags
against 10, value/old_value on 1 point in 6 against ~90 %, 1,589 against 1,745 bytes per point; influxd 0.043 against
0.056 s per 1,000 for HomeIQ's own event points written the same way). So bench/run exports the very points of its
burst case after the case (outside any timed part) and times only the writes of this file.

  export URL DB OUT EXPECT [MEASUREMENT...]
      Reads every point of each MEASUREMENT (default home_assistant_events) in DB's default retention policy with
      chunked InfluxQL queries (epoch=ns) and writes them to OUT as line protocol, in time order, keys in the order
      data-storage writes them (influx_points.c; other keys sorted), integer fields with "i", strings escaped as
      data-storage escapes them. Fails (exit 1) unless it read exactly EXPECT points (EXPECT -1: any number), as
      many per field as influxd's COUNT(*) and as many series as SHOW SERIES. Prints a JSON summary.
  write URL DB FILE BATCH PID
      Creates DB, reads FILE whole, cuts it into requests of BATCH points (before the clock starts) and writes them
      one after the other with /write?precision=ns, nothing else. Prints points, requests, bytes, seconds and
      influxd's (PID's) utime+stime ticks over the writes only.
  check URL SRCDB REFDB [MEASUREMENT...]
      Fails (exit 1) unless REFDB holds exactly what SRCDB holds: the same tag and field keys (and types), and
      byte for byte the same answer to SELECT * (chunked, epoch=ns; hashed as it streams, not parsed).
  capture FILE CAPTURE DB
      Compares FILE with the event lines data-storage sent to DB in a bench/influx_capture.py capture of the same
      burst (bench/run does when BENCH_INFLUX_CAPTURE is set): the same points, parsed and compared key by key
      (floats as numbers). Fails (exit 1) on any difference."""
import hashlib
import json
import math
import os
import re
import sys
import time
import urllib.parse
import urllib.request

import influx_capture_file as capture_file
from influx_capture_file import split_lines

EVENTS = "home_assistant_events"
# the order data-storage writes each point's keys in (influx_points.c: influx_points_event); others follow, sorted
KEY_ORDER = {
    EVENTS: (["area_id", "device_id", "floor_id", "labels", "platform", "device_class", "domain", "entity_id",
              "event_type", "home_id", "unit_of_measurement"],
             ["event_id", "stored_at", "record", "state", "value", "old_state", "old_value", "duration_in_state",
              "context_id", "context_parent_id", "context_user_id", "attributes"]),
}
CHUNK = 10000
POW10 = [1.0, 10.0, 100.0, 1e3, 1e4, 1e5, 1e6]


def die(msg):
    print(f"influx_same_points: {msg}", file=sys.stderr)
    sys.exit(1)


def ident(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def query(url, db, q, **extra):
    """One InfluxQL statement -> its result objects (chunked answers streamed line by line)."""
    params = {"db": db, "q": q, "epoch": "ns", **extra}
    req = urllib.request.Request(url + "/query?" + urllib.parse.urlencode(params))
    with urllib.request.urlopen(req, timeout=600) as r:
        for raw in r:
            if not raw.strip():
                continue
            # numbers kept as influxd's text: floats and integers written back exactly as read
            doc = json.loads(raw, parse_float=lambda s: s, parse_int=lambda s: s)
            if doc.get("error"):
                die(f"{q}: {doc['error']}")
            for res in doc.get("results", []):
                if res.get("error"):
                    die(f"{q}: {res['error']}")
                yield res


def rows(url, db, q, **extra):
    for res in query(url, db, q, **extra):
        for s in res.get("series", []):
            yield s


def tag_keys(url, db, m):
    return sorted(v[0] for s in rows(url, db, f"SHOW TAG KEYS FROM {ident(m)}") for v in s["values"])


def field_types(url, db, m):
    return {v[0]: v[1] for s in rows(url, db, f"SHOW FIELD KEYS FROM {ident(m)}") for v in s["values"]}


def series_count(url, db, m):
    return sum(len(s["values"]) for s in rows(url, db, f"SHOW SERIES FROM {ident(m)}"))


def field_counts(url, db, m):
    """SELECT COUNT(*): points per field over all time."""
    for s in rows(url, db, f"SELECT COUNT(*) FROM {ident(m)}"):
        return {c[len("count_"):]: int(v) for c, v in zip(s["columns"], s["values"][0]) if c != "time"}
    return {}


def esc_key(s):  # tag keys, tag values, field keys: ',', '=', ' ' escaped
    return s.replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def esc_meas(s):
    return s.replace(",", "\\,").replace(" ", "\\ ")


def field_text(v, typ):
    if typ == "string":
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if typ == "integer":
        return v + "i"
    if typ == "boolean":
        return "true" if v is True else "false"
    if v is True or v is False or not isinstance(v, str):
        die(f"float field with value {v!r}")
    return real_text(float(v))


def real_text(v):
    """v as data-storage writes a float field (lib/json_text.c json_text_real): the shortest decimal with at most 6
    places for 1e-4 <= |v| < 1e15, else the shortest %.15g..%.17g; always with a dot or exponent ("23.0")."""
    if v == 0:
        return "-0.0" if math.copysign(1, v) < 0 else "0.0"
    a = abs(v)
    if 1e-4 <= a < 1e15:
        for k in range(7):
            scaled = a * POW10[k]
            if scaled >= 1e15:
                break
            m = math.floor(scaled + 0.5)   # llround of a positive number
            if m / POW10[k] != a:
                continue
            ip, frac = divmod(m, 10 ** k)
            return ("-" if v < 0 else "") + f"{ip}." + (f"{frac:0{k}d}" if k else "0")
    for prec in (15, 16, 17):
        t = "%.*g" % (prec, v)
        if float(t) == v:
            break
    return t if any(c in t for c in ".eEn") else t + ".0"


def export_measurement(url, db, m, out):
    tags = tag_keys(url, db, m)
    ftypes = field_types(url, db, m)
    if set(tags) & set(ftypes):
        die(f"{m}: keys both tag and field: {sorted(set(tags) & set(ftypes))}")
    order_t, order_f = KEY_ORDER.get(m, ([], []))
    tags_o = [k for k in order_t if k in tags] + sorted(k for k in tags if k not in order_t)
    fields_o = [k for k in order_f if k in ftypes] + sorted(k for k in ftypes if k not in order_f)
    mt = esc_meas(m)
    seen_fields = dict.fromkeys(ftypes, 0)
    series = set()
    n = nbytes = 0
    last_t = -1
    for s in rows(url, db, f"SELECT * FROM {ident(m)}", chunked="true", chunk_size=str(CHUNK)):
        cols = s["columns"]
        if cols[0] != "time" or set(cols[1:]) != set(tags) | set(ftypes):
            die(f"{m}: columns {cols} are not time + the tag and field keys")
        pos = {c: i for i, c in enumerate(cols)}
        tpos = [(esc_key(k) + "=", pos[k]) for k in tags_o]
        fpos = [(k, esc_key(k) + "=", pos[k], ftypes[k]) for k in fields_o]
        buf = []
        for v in s["values"]:
            key = mt + "".join("," + k + esc_key(v[i]) for k, i in tpos if v[i] not in (None, ""))
            fs = []
            for k, ke, i, typ in fpos:
                if v[i] is not None:
                    fs.append(ke + field_text(v[i], typ))
                    seen_fields[k] += 1
            if not fs:
                die(f"{m}: a row without fields at {v[0]}")
            t = int(v[0])
            if t < last_t:
                die(f"{m}: rows out of time order ({t} after {last_t})")
            last_t = t
            series.add(key)
            line = f"{key} {','.join(fs)} {t}\n".encode()
            nbytes += len(line)
            buf.append(line)
        out.write(b"".join(buf))
        n += len(s["values"])
    want_fields = field_counts(url, db, m)
    if {k: v for k, v in seen_fields.items() if v} != want_fields:
        die(f"{m}: values per field read {seen_fields}, influxd counts {want_fields}")
    want_series = series_count(url, db, m)
    if len(series) != want_series:
        die(f"{m}: {len(series)} series read, SHOW SERIES has {want_series}")
    return {"measurement": m, "points": n, "bytes": nbytes, "series": len(series), "tags": len(tags),
            "fields": len(ftypes), "field_values": sum(seen_fields.values())}


def cmd_export(url, db, path, expect, meas):
    t0 = time.monotonic()
    with open(path + ".tmp", "wb") as out:
        parts = [export_measurement(url, db, m, out) for m in meas]
    points = sum(p["points"] for p in parts)
    if expect >= 0 and points != expect:
        die(f"exported {points} points, expected {expect}")
    if points == 0:
        die("nothing to export")
    os.replace(path + ".tmp", path)
    print(json.dumps({"points": points, "bytes": sum(p["bytes"] for p in parts),
                      "seconds": round(time.monotonic() - t0, 2), "measurements": parts}))


def split_points(data):
    """The file's points: one per line, except a string field's own newline (a piece not starting a point)."""
    return split_lines(data)


def ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def post(url, path, data):
    req = urllib.request.Request(url + path, data=data, method="POST")
    with urllib.request.urlopen(req, timeout=300) as r:
        r.read()


def cmd_write(url, db, path, batch, pid):
    post(url, "/query", urllib.parse.urlencode({"q": f"CREATE DATABASE {ident(db)}"}).encode())
    with open(path, "rb") as f:
        pts = split_points(f.read())
    bodies = [b"\n".join(pts[s:s + batch]) for s in range(0, len(pts), batch)]
    wpath = "/write?" + urllib.parse.urlencode({"db": db, "precision": "ns"})
    time.sleep(1)   # the database's creation settled before the clock starts
    c0, t0 = ticks(pid), time.monotonic()
    for b in bodies:
        post(url, wpath, b)
    secs = time.monotonic() - t0
    c1 = ticks(pid)
    print(json.dumps({"points": len(pts), "requests": len(bodies), "bytes": sum(map(len, bodies)),
                      "seconds": secs, "influxd_ticks": c1 - c0}))


def select_digest(url, db, m):
    """sha256 and size of influxd's raw answer to SELECT * FROM m (chunked, epoch=ns)."""
    params = {"db": db, "q": f"SELECT * FROM {ident(m)}", "epoch": "ns", "chunked": "true", "chunk_size": str(CHUNK)}
    h, n = hashlib.sha256(), 0
    with urllib.request.urlopen(url + "/query?" + urllib.parse.urlencode(params), timeout=600) as r:
        for blk in iter(lambda: r.read(1 << 20), b""):
            h.update(blk)
            n += len(blk)
    return h.hexdigest(), n


def cmd_check(url, src, ref, meas):
    out = {}
    for m in meas:
        a = (tag_keys(url, src, m), field_types(url, src, m))
        b = (tag_keys(url, ref, m), field_types(url, ref, m))
        if a != b:
            die(f"{m}: keys differ: {src} {a}, {ref} {b}")
        d1, d2 = select_digest(url, src, m), select_digest(url, ref, m)
        if d1 != d2:
            die(f"{m}: SELECT * differs: {src} {d1}, {ref} {d2}")
        out[m] = {"sha256": d1[0], "answer_bytes": d1[1]}
    print(json.dumps({"same": True, "measurements": out}))


def parse_line(line):
    """A line protocol point -> (measurement, {tag: value}, {field: value}, time); floats as float."""
    i, n = 0, len(line)
    key = []
    while i < n and not (line[i] == " " and (i == 0 or line[i - 1] != "\\")):
        i += 1
    key = re.split(r"(?<!\\),", line[:i])
    m, tags = key[0], dict(re.split(r"(?<!\\)=", t, 1) for t in key[1:])
    i += 1
    fields = {}
    while True:
        j = line.index("=", i)
        k = line[i:j]
        i = j + 1
        if line[i] == '"':
            j = i + 1
            sb = []
            while line[j] != '"':
                if line[j] == "\\" and line[j + 1] in '"\\':
                    j += 1
                sb.append(line[j])
                j += 1
            fields[k] = "".join(sb)
            i = j + 1
        else:
            j = i
            while line[j] not in ", ":
                j += 1
            v = line[i:j]
            fields[k] = int(v[:-1]) if v.endswith("i") else (v == "true" if v in ("true", "false") else float(v))
            i = j
        if line[i] == " ":
            return m, tags, fields, int(line[i + 1:])
        i += 1


def point_key(line):
    """(series key, timestamp) of a line: a later write of the same pair replaces the point."""
    return line.split(b" ", 1)[0], line.rsplit(b" ", 1)[1]


def cmd_capture(path, cap, db):
    with open(path, "rb") as f:
        mine = {point_key(p): p for p in split_points(f.read())}
    theirs = {}
    for _, p, body, _ in capture_file.read(cap):
        u = urllib.parse.urlparse(p)
        qs = urllib.parse.parse_qs(u.query)
        if u.path != "/write" or qs.get("db") != [db] or "rp" in qs:
            continue
        for ln in split_lines(body):
            if ln.startswith(EVENTS.encode() + b","):
                theirs[point_key(ln)] = ln
    if mine != theirs:   # byte for byte, tags and fields in the same order; then say what differs
        only_m = len(mine.keys() - theirs.keys())
        only_t = len(theirs.keys() - mine.keys())
        diff = ""
        k = next((k for k in mine.keys() & theirs.keys() if mine[k] != theirs[k]), None)
        if k:
            pm, pt = parse_line(mine[k].decode()), parse_line(theirs[k].decode())
            fd = sorted(f for f in pm[2].keys() | pt[2].keys() if pm[2].get(f) != pt[2].get(f))
            diff = (f"; first differing point {k[0][:160]!r} at {k[1].decode()}: "
                    + (f"tags {pm[1]} vs {pt[1]}; " if pm[1] != pt[1] else "")
                    + (f"fields {fd}: " + "; ".join(f"{f}={str(pm[2].get(f))[:80]} vs {str(pt[2].get(f))[:80]}"
                                                  for f in fd) if fd else "the same values, other text"))
        die(f"export {len(mine)} points, capture {len(theirs)}: {only_m} only exported, {only_t} only captured" + diff)
    print(json.dumps({"same": True, "points": len(mine), "bytes": sum(map(len, mine.values()))}))


def main(a):
    if len(a) >= 5 and a[0] == "export":
        cmd_export(a[1].rstrip("/"), a[2], a[3], int(a[4]), a[5:] or [EVENTS])
    elif len(a) == 6 and a[0] == "write":
        cmd_write(a[1].rstrip("/"), a[2], a[3], int(a[4]), int(a[5]))
    elif len(a) >= 4 and a[0] == "check":
        cmd_check(a[1].rstrip("/"), a[2], a[3], a[4:] or [EVENTS])
    elif len(a) == 4 and a[0] == "capture":
        cmd_capture(a[1], a[2], a[3])
    else:
        die("usage: see the comment at the top of bench/influx_same_points.py")


if __name__ == "__main__":
    main(sys.argv[1:])
