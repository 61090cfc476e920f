#!/usr/bin/env python3
"""A raw HTTP/2 client that never answers PINGs, for controller.sh: it
sends the preface and SETTINGS, acknowledges the server's SETTINGS, then
reads everything the server sends and ACKs nothing (a peer whose process
hung, or a half-open connection). The controller's keepalive must close the
connection after about interval + timeout.

  noack.py ADDR SECONDS
  stdout: one JSON line {"closed_after": S or null, "pings": N,
  "goaway": bool}: seconds from the handshake to EOF (null: still open
  after SECONDS), PINGs (not ACKs) received, whether a GOAWAY came.
Standard library only.
"""
import json
import socket
import struct
import sys
import time

host, port = sys.argv[1].rsplit(":", 1)
secs = float(sys.argv[2])
sock = socket.create_connection((host, int(port)), timeout=10)
sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" +
             struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0))
t0 = time.time()
buf = b""
pings = 0
goaway = False
closed = None
sock.settimeout(0.1)
while time.time() - t0 < secs:
    try:
        data = sock.recv(65536)
    except socket.timeout:
        continue
    except OSError:
        data = b""
    if not data:
        closed = round(time.time() - t0, 2)
        break
    buf += data
    while len(buf) >= 9:
        n = int.from_bytes(buf[0:3], "big")
        if len(buf) < 9 + n:
            break
        typ, flags = buf[3], buf[4]
        if typ == 4 and not flags & 1:        # SETTINGS: acknowledge
            sock.sendall(struct.pack(">I", 0)[1:] + bytes([4, 1]) +
                         struct.pack(">I", 0))
        elif typ == 6 and not flags & 1:      # PING: never answered
            pings += 1
        elif typ == 7:
            goaway = True
        buf = buf[9 + n:]
print(json.dumps({"closed_after": closed, "pings": pings,
                  "goaway": goaway}), flush=True)
