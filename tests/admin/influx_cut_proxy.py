#!/usr/bin/env python3
"""tests/admin/influx_cut_proxy.py -- an HTTP proxy in front of a real influxd
that can lose the answer to a write InfluxDB has already applied.

Why: the entity summary must stay exact when a batch is stored but its
acknowledgement never arrives (a timeout, a dropped connection) and the batch
is then posted again (test_influx_summary.sh). A real influxd cannot be told
to do that; a proxy that forwards the write, waits for InfluxDB's 204 and then
closes the client's connection without answering reproduces it exactly and
deterministically.

Usage: influx_cut_proxy.py LISTEN_PORT UPSTREAM_URL CUT_FILE
While CUT_FILE exists, a POST /write (or /api/v2/write) whose body contains
the text in CUT_FILE is forwarded, applied by InfluxDB, and its answer lost.
While CUT_FILE.block exists, a write whose body contains its text is not
forwarded at all: 503. While CUT_FILE.hold exists, a write whose body contains
its text waits (not yet forwarded: "held" is appended to CUT_FILE.log) until
CUT_FILE.hold is removed or no longer names text in its body (replace it whole, e.g. by mv, to let some
held writes go on and keep others: test_influx_feed_faults.sh), then goes on (answered 503 if CUT_FILE.block names it
by then); every write's answer is logged once it
was sent back ("answered <status> watched" when its body contains the text in
CUT_FILE.watch, else "answered <status> -"), so a test can make a later batch
finish before an earlier one (test_influx_feed.sh). While CUT_FILE.qhold exists, a /query whose q contains its
text waits ("qheld" is appended to CUT_FILE.log) until CUT_FILE.qhold is removed (test_influx_restore.sh: batches
finish while a restore waits). While CUT_FILE.qlog exists, every /query is appended to
it as "<answer bytes> <q>" on one line (test_influx_feed_faults.sh: what a feed page asks). Everything else is
forwarded unchanged. Loopback only."""
import http.client
import http.server
import os
import sys
import time
import urllib.parse

PORT, UPSTREAM, CUT_FILE = int(sys.argv[1]), urllib.parse.urlsplit(sys.argv[2]), sys.argv[3]


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _forward(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else None
        self._hold(body)  # (before the block check: a held write can be blocked when it goes on)
        self._qhold(body)
        if self.command == "POST" and "/write" in self.path and body and os.path.exists(CUT_FILE + ".block"):
            with open(CUT_FILE + ".block", "rb") as f:
                block = f.read().strip()
            if block and block in body:
                msg = b'{"error":"blocked by the test proxy"}'
                self.send_response(503)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                self.wfile.write(msg)
                return
        up = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        if body is not None:
            headers["Content-Length"] = str(len(body))
        up.request(self.command, self.path, body=body, headers=headers)
        res = up.getresponse()
        data = res.read()
        up.close()
        cut = None
        if os.path.exists(CUT_FILE):
            with open(CUT_FILE, "rb") as f:
                cut = f.read().strip()
        if cut and self.command == "POST" and "/write" in self.path and body and cut in body and res.status == 204:
            with open(CUT_FILE + ".hits", "a") as f:
                f.write("cut\n")
            self.close_connection = True  # applied by InfluxDB; the client never learns it
            return
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
        if self.command == "POST" and "/write" in self.path and body:
            self._log(f"answered {res.status} {'watched' if self._has(body, '.watch') else '-'}")
        if "/query" in self.path and os.path.exists(CUT_FILE + ".qlog"):
            q = self._query_text(body)
            with open(CUT_FILE + ".qlog", "a") as f:
                f.write(f"{len(data)} {' '.join(q.split())}\n")

    def _log(self, line):
        with open(CUT_FILE + ".log", "a") as f:
            f.write(line + "\n")

    def _has(self, body, suffix):
        try:
            with open(CUT_FILE + suffix, "rb") as f:
                mark = f.read().strip()
        except OSError:
            return False
        return bool(mark) and mark in body

    def _hold(self, body):
        """Waits while CUT_FILE.hold exists and names text in this write's body. True when it waited."""
        if self.command != "POST" or "/write" not in self.path or not body:
            return False
        if not self._has(body, ".hold"):
            return False
        self._log("held")
        while self._has(body, ".hold"):
            time.sleep(0.02)
        return True

    def _query_text(self, body):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("q", [""])[0]
        if not q and body:
            q = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("q", [""])[0]
        return q

    def _qhold(self, body):
        """Waits while CUT_FILE.qhold exists and names text in this /query's q."""
        if "/query" not in self.path:
            return
        try:
            with open(CUT_FILE + ".qhold", "r", encoding="utf-8") as f:
                mark = f.read().strip()
        except OSError:
            return
        if not mark or mark not in self._query_text(body):
            return
        self._log("qheld")
        while os.path.exists(CUT_FILE + ".qhold"):
            time.sleep(0.02)

    do_GET = do_POST = do_HEAD = _forward


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Proxy).serve_forever()
