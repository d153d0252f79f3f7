#!/usr/bin/env python3
"""idle_conns.py PORT N SECONDS [PARTIAL] -- opens N TCP connections to
127.0.0.1:PORT and holds them idle for SECONDS (with PARTIAL=1 each sends half a
request line first, the slow-loris shape). Prints how many connected and, at
the end, how many the server had closed. Standard library only."""
import resource, socket, sys, time

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < hard:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
partial = len(sys.argv) > 4 and sys.argv[4] == "1"
socks = []
for _ in range(n):
    try:
        s = socket.socket()
    except OSError as e:
        print(f"socket: {e}", file=sys.stderr)
        break
    s.setblocking(False)
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    socks.append(s)
time.sleep(0.5)
if partial:
    for s in socks:
        try:
            s.send(b"GET /api/v1/ev")
        except OSError:
            pass
print(f"opened {len(socks)}", flush=True)
deadline = time.time() + secs
closed = set()
while time.time() < deadline:
    for i, s in enumerate(socks):
        if i in closed:
            continue
        try:
            if s.recv(4096) == b"":
                closed.add(i)
        except BlockingIOError:
            pass
        except OSError:
            closed.add(i)
    time.sleep(0.2)
print(f"closed_by_server {len(closed)}", flush=True)
