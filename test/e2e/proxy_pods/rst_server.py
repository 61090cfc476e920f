#!/usr/bin/env python3
"""An HTTP/1.1 origin that fails mid-response, for test/e2e/proxy_pods.sh.

  rst_server.py PORT LOG   listens on [::]:PORT (v4 too). Each connection:
                           reads one request head, answers a head promising
                           Content-Length: 1000000, sends 100000 body bytes,
                           waits 0.3 s (so the bytes travel), then closes
                           with RST (SO_LINGER on, timeout 0). Appends
                           "reset <n>" to LOG after each one.
"""
import socket, struct, sys, threading, time

n = 0
lock = threading.Lock()


def serve(c, log):
    global n
    try:
        c.settimeout(10)
        b = b""
        while b"\r\n\r\n" not in b:
            d = c.recv(4096)
            if not d:
                return
            b += d
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                  b"Content-Length: 1000000\r\n\r\n" + b"r" * 100000)
        time.sleep(0.3)
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with lock:
            n += 1
            with open(log, "a") as f:
                f.write("reset %d\n" % n)
    except OSError:
        pass
    finally:
        c.close()


s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
s.bind(("::", int(sys.argv[1])))
s.listen(16)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c, sys.argv[2]), daemon=True).start()
