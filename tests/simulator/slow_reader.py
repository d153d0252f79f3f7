#!/usr/bin/env python3
"""slow_reader.py PORT TOKEN SECONDS -- a WebSocket client that authenticates,
subscribes to all events and then stops reading for SECONDS, so the simulator's
back-pressure handling can be observed. Standard library only."""
import base64, os, socket, struct, sys, time

port, token, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall((f"GET /api/websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
assert head.startswith(b"HTTP/1.1 101"), head

def frame(text):
    data = text.encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    hdr = bytes([0x81]) + (bytes([0x80 | len(data)]) if len(data) < 126 else bytes([0x80 | 126]) + struct.pack(">H", len(data)))
    return hdr + mask + masked

s.sendall(frame('{"type":"auth","access_token":"%s"}' % token))
s.sendall(frame('{"id":1,"type":"subscribe_events"}'))
time.sleep(secs)   # read nothing
s.close()
print("slow reader done")
