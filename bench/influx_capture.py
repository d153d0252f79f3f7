#!/usr/bin/env python3
"""bench/influx_capture.py LISTEN_PORT UPSTREAM_URL OUT -- a recording proxy in front of influxd (issue 15).

Why: to tell what HomeIQ's own requests cost influxd apart from the machine's load during a burst,
bench/run (BENCH_INFLUX_CAPTURE=OUT) points data-storage at this proxy; every request it forwards is
appended to OUT as a header line "METHOD<TAB>PATH?QUERY<TAB>BODY_BYTES<TAB>CONTENT_ENCODING" and the body.
bench/influx_replay.py then writes the captured lines into a fresh influxd, as captured or re-batched."""
import http.client
import http.server
import sys
import threading
import urllib.parse

from influx_capture_file import record

PORT, UP, OUT = int(sys.argv[1]), urllib.parse.urlparse(sys.argv[2]), sys.argv[3]
lock = threading.Lock()
out = open(OUT, "ab")
local = threading.local()


def upstream():
    c = getattr(local, "c", None)
    if c is None:
        c = local.c = http.client.HTTPConnection(UP.hostname, UP.port, timeout=300)
    return c


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def fwd(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        enc = self.headers.get("Content-Encoding", "")
        with lock:
            out.write(record(self.command, self.path, body, enc))
            out.flush()
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection", "content-length")}
        for attempt in range(2):
            try:
                c = upstream()
                c.request(self.command, self.path, body=body if self.command != "GET" else None, headers=hdrs)
                r = c.getresponse()
                data = r.read()
                break
            except (http.client.HTTPException, OSError):
                local.c = None
                if attempt:
                    raise
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_HEAD = fwd


class S(http.server.ThreadingHTTPServer):
    daemon_threads = True


S(("127.0.0.1", PORT), H).serve_forever()
