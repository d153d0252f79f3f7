#!/usr/bin/env python3
"""tls_proxy.py LISTEN_PORT TARGET_PORT CERT KEY -- terminates TLS on 127.0.0.1:LISTEN_PORT
and forwards the bytes to 127.0.0.1:TARGET_PORT, so the wss:// side of lib/ws.c can be
tested against the (plain) simulator. Standard library only; one thread per direction."""
import socket, ssl, sys, threading

listen_port, target_port, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.create_server(("127.0.0.1", listen_port), reuse_port=False)

def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def handle(raw):
    try:
        tls = ctx.wrap_socket(raw, server_side=True)
    except (ssl.SSLError, OSError):
        raw.close()
        return
    up = socket.create_connection(("127.0.0.1", target_port))
    threading.Thread(target=pump, args=(tls, up), daemon=True).start()
    pump(up, tls)

print("ready", flush=True)
while True:
    conn, _ = srv.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
