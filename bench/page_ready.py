#!/usr/bin/python3
"""bench/page_ready.py -- "page ready" of the dashboard in a real headless
Chromium (Debian's chromium + chromedriver), measured by the page itself:
app.js marks `homeiq-ready` when its first loads (health, overview, entity
list, dead letters) are answered and drawn, and `homeiq-tail` when the first
live-tail event is shown; both are milliseconds since navigation start. Each
API call's request-to-response time (Resource Timing) is kept too, so the
server's share can be told from the browser's own (start-up, script, layout).

Usage: page_ready.py URL LOADS  (HOMEIQ_API_TOKEN in the environment)
Prints one JSON object: every load's marks and the shown total."""
import json, os, sys, tempfile, time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

URL, LOADS = sys.argv[1], int(sys.argv[2])
TOKEN = os.environ.get("HOMEIQ_API_TOKEN", "")

o = webdriver.ChromeOptions()
o.binary_location = "/usr/bin/chromium"
for a in ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
          "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
          "--user-data-dir=" + tempfile.mkdtemp(prefix="homeiq-bench-chromium-"), "--window-size=1280,1600"]:
    o.add_argument(a)
d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
MARKS = """const m = (n) => { const e = performance.getEntriesByName(n); return e.length ? e[0].startTime : null; };
const nav = performance.getEntriesByType("navigation")[0];
return {ready_ms: m("homeiq-ready"), tail_ms: m("homeiq-tail"), dom_content_loaded_ms: nav ? nav.domContentLoadedEventEnd : null,
        total_shown: document.querySelector("#total-events").textContent,
        entities_shown: document.querySelector("#total-entities").textContent,
        api_ms: Object.fromEntries(performance.getEntriesByType("resource").filter((e) => e.name.includes("/api/v1/") &&
          !e.name.includes("/stream")).map((e) => [e.name.replace(/^.*\/api\/v1\//, ""), Math.round(e.responseEnd - e.requestStart)]))};"""
loads = []
try:
    for i in range(LOADS):
        d.get("about:blank")
        d.get(URL + ("#token=" + TOKEN if TOKEN else ""))
        end = time.monotonic() + 60
        r = {}
        while time.monotonic() < end:
            r = d.execute_script(MARKS)
            if r["ready_ms"] is not None and r["tail_ms"] is not None:
                break
            time.sleep(0.02)
        r["load"] = i + 1
        loads.append(r)
finally:
    d.quit()
ready = sorted(x["ready_ms"] for x in loads if x["ready_ms"] is not None)
tail = sorted(x["tail_ms"] for x in loads if x["tail_ms"] is not None)
med = lambda a: a[(len(a) - 1) // 2] if a else None
print(json.dumps({"loads": loads, "ready_ms": {"first": loads[0]["ready_ms"] if loads else None, "median": med(ready),
                                               "max": ready[-1] if ready else None},
                  "tail_ms": {"median": med(tail), "max": tail[-1] if tail else None}}))
