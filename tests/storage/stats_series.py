#!/usr/bin/env python3
"""stats_series.py -- series with known answers for the statistics suite.

  stats_series.py gen T0 OUT_DIR [ha]
                                     writes records.json (enriched records, as
                                     enrichment sends them) and expected.json
                                     (ha: as stored on INFLUXDB_SCHEMA=
                                     homeassistant, without the states HA skips)
  stats_series.py check EXPECTED GOT5 GOTH
                                     compares GET /api/v1/statistics answers
                                     (period 5minute, hour) with expected.json
  stats_series.py late T0 OUT_DIR    a total_increasing meter over 5 hours:
                                     live.json (in time order), late.json
                                     (one event of its second hour, a reset,
                                     posted after the rest) and expected.json
  stats_series.py silent T0 OUT_DIR   two entities silent for over two hours:
                                     before.json, cross.json (the first
                                     state after the silence), after.json,
                                     expected.json
  stats_series.py busy T0 OUT_DIR N  a state a second: live.json (N), late.json
                                     (one of its second minute), last.json
                                     (the next live one), expected.json
  stats_series.py bulk T_END DAYS N ENTITIES OUT   N records spread over DAYS
                                     days before T_END (retention tests)

The expected rows are computed here, independently of the C code: for each
period, the step function (each value holds until the next state; non-numeric
states hold "no value") is integrated between its breakpoints; the sum follows
HA's compile_statistics (zero point, reset below 90 % on total_increasing, a
new last_reset on total). The series is known up to the end of the 5-minute
bucket of its latest event, so the last period is clipped there.
"""
import datetime
import json
import math
import random
import sys

P5, H1 = 300, 3600


def iso(t):
    us = round(t * 1e6)
    d = datetime.datetime.fromtimestamp(us // 1000000, datetime.timezone.utc)
    return d.strftime('%Y-%m-%dT%H:%M:%S') + ".%06dZ" % (us % 1000000)


def exact(s):
    """The same series with every time as storage reads it (whole microseconds)."""
    return {e: (k, [(round(t * 1e6) / 1e6, st, None if lr is None else round(lr)) for (t, st, lr) in ev])
            for e, (k, ev) in s.items()}


def record(ent, t, state, sclass="measurement", last_reset=None, n=0):
    try:
        v = float(state)
        if not math.isfinite(v):
            v = None
    except ValueError:
        v = None
    if state in ("on", "off"):
        v = 1.0 if state == "on" else 0.0   # enrichment's binary reading; not a number for statistics
    attrs = {"state_class": sclass, "unit_of_measurement": "W"}
    if last_reset is not None:
        attrs["last_reset"] = iso(last_reset)
    return {"event_type": "state_changed", "entity_id": ent, "domain": ent.split('.')[0],
            "object_id": ent.split('.')[1], "time_fired": iso(t), "origin": "LOCAL",
            "context_id": "ctx-%s-%d" % (ent, n), "context_parent_id": None, "context_user_id": None,
            "state": state, "value": v, "old_state": None, "old_value": None, "unit_of_measurement": "W",
            "device_class": None, "state_class": sclass, "friendly_name": None, "attributes": attrs,
            "duration_in_state": None, "state_changed": True, "time_of_day": "night", "weekday": "monday"}


def series(t0):
    """entity -> (state_class, [(t, state, last_reset)])"""
    rnd = random.Random(13)
    s = {}
    s["sensor.constant"] = ("measurement", [(t0 + i * 420, "5", None) for i in range(18)])
    s["sensor.step"] = ("measurement", [(t0, "10", None), (t0 + 150, "20", None), (t0 + 600, "30", None),
                                        (t0 + 3599.5, "-4.25", None), (t0 + 7300, "0", None)])
    s["sensor.sawtooth"] = ("measurement", [(t0 + i * 30, str(i % 10), None) for i in range(300)])
    t, ev = t0 + 0.123456, []
    for i in range(400):
        ev.append((round(t, 6), "%.3f" % rnd.uniform(-20, 40), None))
        t += rnd.choice([0.5, 3, 17, 61, 299, 301, 900, 1])
    s["sensor.irregular"] = ("measurement", ev)
    s["sensor.gap"] = ("measurement", [(t0, "7", None), (t0 + 100, "unavailable", None), (t0 + 1000, "9", None),
                                       (t0 + 1200, "unknown", None), (t0 + 5000, "11", None),
                                       (t0 + 5001, "", None), (t0 + 9000, "12.5", None)])
    m, ev = 1000.0, []
    for i in range(200):
        if i in (50, 140):
            m = 3.0          # meter reset (below 90 %)
        elif i == 90:
            m -= 5           # a small dip: not a reset
        else:
            m += rnd.uniform(0, 2.5)
        ev.append((t0 + 40 * i + 7, "%.4f" % m, None))
    s["sensor.meter"] = ("total_increasing", ev)
    c, lr, ev = 0.0, t0 - 86400, []
    for i in range(150):
        if i in (40, 100):
            lr, c = t0 + 55 * i, 0.0   # new cycle
        c += rnd.uniform(0, 1)
        ev.append((t0 + 55 * i + 3, "%.4f" % c, lr))
    s["sensor.cost"] = ("total", ev)
    s["light.porch"] = ("measurement", [(t0 + i * 100, "on" if i % 2 else "off", None) for i in range(30)])
    return s


def value_at(ev, t):
    """Numeric value in force at t (after every sample at or before t), or None."""
    v = None
    for (ts, st, _lr) in ev:
        if ts <= t:
            v = num(st)
    return v


def num(st):
    if st in ("on", "off"):
        return None
    try:
        v = float(st)
        return v if math.isfinite(v) else None
    except ValueError:
        return None


def ha_sum(kind, ev, t_end):
    total, old, new, have, lr = 0.0, 0.0, 0.0, False, None
    for (ts, st, r) in ev:
        if ts >= t_end:
            break
        f = num(st)
        if f is None:
            continue
        if not have:
            old = new = f
            have = True
        else:
            reset = (kind == "total" and r is not None and r != lr) or \
                    (kind == "total_increasing" and f < 0.9 * new)
            if reset:
                total += new - old
                old = 0.0
            new = f
        if r is not None:
            lr = r
    return total + new - old


def period_row(kind, ev, b, e):
    pts = sorted({b, e} | {ts for (ts, _s, _r) in ev if b < ts < e})
    w = cov = 0.0
    vals = []
    for a, z in zip(pts, pts[1:]):
        v = value_at(ev, a)
        if v is None or z == a:
            continue
        w += v * (z - a)
        cov += z - a
        vals.append(v)
    rec = [num(st) for (ts, st, _r) in ev if b <= ts < e and num(st) is not None]
    vals += rec
    if cov == 0 and not rec:
        return None
    row = {"start": int(round(b * 1000)), "mean": w / cov if cov > 0 else None,
           "min": min(vals), "max": max(vals), "count": len(rec)}
    if kind != "measurement":
        row["sum"] = ha_sum(kind, ev, e)
        row["state"] = [num(st) for (ts, st, _r) in ev if ts < e and num(st) is not None][-1]
    return row


def expected(s):
    out = {}
    for ent, (kind, ev) in s.items():
        if not any(num(st) is not None for (_t, st, _r) in ev):
            continue
        ev = sorted(ev, key=lambda x: x[0])
        known = (math.floor(ev[-1][0] / P5) * P5) + P5
        per = {}
        for name, p in (("5minute", P5), ("hour", H1)):
            first = math.floor(ev[0][0] / p) * p
            rows, b = [], first
            while b < known:
                r = period_row(kind, ev, b, min(b + p, known))
                if r:
                    rows.append(r)
                b += p
            per[name] = rows
        out[ent] = per
    return out


HA_SKIPPED = ("unknown", "unavailable", "")


def stored(s, ha_schema):
    """The states storage keeps: on INFLUXDB_SCHEMA=homeassistant those HA's
    InfluxDB integration skips (unknown, unavailable, empty) are not stored, so
    they break nothing there: the value before them holds across."""
    if not ha_schema:
        return s
    return {e: (k, [x for x in ev if x[1] not in HA_SKIPPED]) for e, (k, ev) in s.items()}


def gen(t0, outdir, ha_schema=False):
    s = exact(series(t0))
    recs = []
    for ent, (kind, ev) in s.items():
        for n, (t, st, lr) in enumerate(ev):
            recs.append(record(ent, t, st, kind, lr, n))
    random.Random(7).shuffle(recs)   # out of order, as backfill + live would mix them
    json.dump(recs, open(outdir + "/records.json", "w"))
    json.dump(expected(stored(s, ha_schema)), open(outdir + "/expected.json", "w"))


def late(t0, outdir):
    """A meter whose later hours already have rows when an event of its past
    arrives: the late reset moves every sum after it (stats_kill_influx.sh)."""
    ev, m = [], 100.0
    for i in range(300):
        m += 0.5 + (i % 7) * 0.25
        ev.append((t0 + 60 * i + 11, "%.4f" % m, None))
    lt = (t0 + 3600 + 1234.5, "3.0000", None)     # below 90 %: a meter reset, late
    s = exact({"sensor.late_meter": ("total_increasing", ev + [lt])})
    ev2 = s["sensor.late_meter"][1]
    recs = [record("sensor.late_meter", t, st, "total_increasing", lr, n) for n, (t, st, lr) in enumerate(ev2)]
    json.dump(recs[:-1], open(outdir + "/live.json", "w"))
    json.dump({"events": recs[-1:]}, open(outdir + "/late.json", "w"))
    json.dump(expected(s), open(outdir + "/expected.json", "w"))


def silent(t0, outdir):
    """Two entities (a measurement and a total_increasing meter) silent for
    over two hours: before.json (their first 50 minutes), cross.json (the
    first state of each after the silence: a batch whose rows cross the silent
    hours), after.json (20 more minutes) and expected.json
    (stats_kill_influx.sh: the silent hours' rows must survive a lost hourly
    write)."""
    s, m = {}, 50.0
    ev = [(t0 + 60 * i + 13, "%.2f" % (20 + (i % 9) * 0.5), None) for i in range(50)]
    ev += [(t0 + 3 * 3600 + 1000 + 60 * i + 13, "%.2f" % (30 + (i % 5)), None) for i in range(21)]
    s["sensor.silent"] = ("measurement", ev)
    ev = []
    for i in range(50):
        m += 0.25 + (i % 4) * 0.125
        ev.append((t0 + 60 * i + 29, "%.4f" % m, None))
    for i in range(21):
        m += 0.5
        ev.append((t0 + 3 * 3600 + 1000 + 60 * i + 29, "%.4f" % m, None))
    s["sensor.silent_meter"] = ("total_increasing", ev)
    s = exact(s)
    parts = {"before": [], "cross": [], "after": []}
    for ent, (kind, ev) in s.items():
        for n, (t, st, lr) in enumerate(ev):
            part = "before" if n < 50 else "cross" if n == 50 else "after"
            parts[part].append(record(ent, t, st, kind, lr, n))
    for name, recs in parts.items():
        json.dump(sorted(recs, key=lambda r: r["time_fired"]), open("%s/%s.json" % (outdir, name), "w"))
    json.dump(expected(s), open(outdir + "/expected.json", "w"))


def busy(t0, outdir, n):
    """A sensor with a state every second: live.json (n states from t0),
    late.json (one state of its second minute, out of order), last.json (the
    next live state) and expected.json (stats_flush_influx.sh: the recovery of
    a late and a live state far apart reads neither what lies between)."""
    ev = [(t0 + i + 0.25, "%.2f" % (20 + (i % 37) * 0.125), None) for i in range(n)]
    lt = (t0 + 100.5, "99.50", None)
    la = (t0 + n + 5.25, "21.00", None)
    s = exact({"sensor.busy": ("measurement", ev + [lt, la])})
    recs = [record("sensor.busy", t, st, "measurement", lr, k) for k, (t, st, lr) in enumerate(s["sensor.busy"][1])]
    json.dump(recs[:n], open(outdir + "/live.json", "w"))
    json.dump({"events": recs[n:n + 1]}, open(outdir + "/late.json", "w"))
    json.dump({"events": recs[n + 1:]}, open(outdir + "/last.json", "w"))
    json.dump(expected(s), open(outdir + "/expected.json", "w"))


def close(a, b):
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) <= 1e-9 * max(1.0, abs(a))


def check(exp_path, got5, goth):
    exp = json.load(open(exp_path))
    got = {"5minute": json.load(open(got5)), "hour": json.load(open(goth))}
    bad = 0
    for per in ("5minute", "hour"):
        if "light.porch" in got[per]:
            print("# light.porch (on/off) must have no statistics"); bad += 1
        for ent, rows_by in exp.items():
            want, have = rows_by[per], got[per].get(ent, [])
            if len(want) != len(have):
                print("# %s %s: %d rows expected, %d got" % (ent, per, len(want), len(have))); bad += 1
                continue
            for w, h in zip(want, have):
                for k in w:
                    if k in ("start", "count"):
                        ok = w[k] == h.get(k)
                    else:
                        ok = close(w[k], h.get(k))
                    if not ok:
                        bad += 1
                        if bad < 15:
                            print("# %s %s start %s: %s want %r got %r" % (ent, per, w["start"], k, w[k], h.get(k)))
    print("# compared %d entities: %d mismatches" % (len(exp), bad))
    return 1 if bad else 0


def bulk(t_end, days, n, ents, out, hole=None):
    """hole: a time; no record within 3 hours of it (a cut-off the test checks
    against, so the hour it falls in cannot change the counts)."""
    recs, span = [], days * 86400
    for i in range(n):
        t = t_end - span + span * i / n
        if hole is not None and abs(t - hole) < 3 * 3600:
            continue
        e = "sensor.bulk_%d" % (i % ents)
        recs.append(record(e, t, "%.2f" % (20 + 5 * math.sin(i / 50.0)), "measurement", None, i))
    json.dump(recs, open(out, "w"))


def house(t_end, days, batch, outdir):
    """A 60-entity house: 10 power sensors every 30 s, 10 energy meters
    (total_increasing) every 60 s, 20 temperature/humidity sensors every 5 min,
    20 on/off entities every ~10 min; in time order, in files of `batch`
    records (outdir/h_NNNNN.json). Prints the event count."""
    rnd = random.Random(60)
    ents = [("sensor.power_%d" % i, "measurement", 30) for i in range(10)] + \
           [("sensor.energy_%d" % i, "total_increasing", 60) for i in range(10)] + \
           [("sensor.climate_%d" % i, "measurement", 300) for i in range(20)] + \
           [("binary_sensor.motion_%d" % i, "measurement", 600) for i in range(20)]
    t0 = t_end - days * 86400
    ev = []
    for k, (e, sc, every) in enumerate(ents):
        t, m, n = t0 + rnd.uniform(0, every), 0.0, 0
        while t < t_end:
            if e.startswith("binary"):
                st = "on" if n % 2 else "off"
            elif sc == "total_increasing":
                m += rnd.uniform(0, 0.05)
                st = "%.3f" % m
            elif e.startswith("sensor.power"):
                st = "%.1f" % rnd.uniform(0, 3000)
            else:
                st = "%.2f" % (20 + 3 * math.sin(t / 40000.0 + k))
            ev.append((t, e, st, sc, n))
            t += every * rnd.uniform(0.8, 1.2)
            n += 1
    ev.sort()
    for i in range(0, len(ev), batch):
        recs = [record(e, t, st, sc, None, n) for (t, e, st, sc, n) in ev[i:i + batch]]
        json.dump({"events": recs}, open("%s/h_%05d.json" % (outdir, i // batch), "w"))
    print(len(ev))


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "gen":
        gen(float(sys.argv[2]), sys.argv[3], len(sys.argv) > 4 and sys.argv[4] == "ha")
    elif cmd == "late":
        late(float(sys.argv[2]), sys.argv[3])
    elif cmd == "silent":
        silent(float(sys.argv[2]), sys.argv[3])
    elif cmd == "busy":
        busy(float(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
    elif cmd == "check":
        sys.exit(check(sys.argv[2], sys.argv[3], sys.argv[4]))
    elif cmd == "house":
        house(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
    elif cmd == "bulk":
        bulk(float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6],
             float(sys.argv[7]) if len(sys.argv) > 7 else None)
