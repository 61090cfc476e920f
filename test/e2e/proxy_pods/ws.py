#!/usr/bin/env python3
"""WebSocket (RFC 6455) on raw sockets, both ends, for test/e2e/proxy_pods.sh.

  ws.py server PORT       listens on [::]:PORT (v4 too). Each connection:
                          the opening handshake (101 with the computed
                          Sec-WebSocket-Accept), a server-first text frame
                          "hello from server", then every data frame comes
                          back (text upper-cased, binary reversed); ping
                          gets pong; close gets close.
  ws.py client HOST PORT  the client side: sends the handshake, checks the
                          101 and Sec-WebSocket-Accept, reads the greeting,
                          sends masked frames (short text, 300-byte text with
                          a 16-bit length, 70000-byte binary with a 64-bit
                          length, a ping), checks each answer, closes
                          cleanly. One line per step; "WS OK" at the end,
                          else "WS FAIL <why>" and exit 1.

Only the standard library: no websockets package is needed.
"""
import base64, hashlib, os, socket, struct, sys, threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def accept_key(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        d = s.recv(n - len(b))
        if not d:
            raise EOFError("connection closed after %d of %d bytes" % (len(b), n))
        b += d
    return b


def read_head(s):
    b = b""
    while b"\r\n\r\n" not in b:
        d = s.recv(1)
        if not d:
            raise EOFError("connection closed in the head")
        b += d
        if len(b) > 16384:
            raise ValueError("head too long")
    lines = b[:-4].split(b"\r\n")
    fields = {}
    for l in lines[1:]:
        k, _, v = l.partition(b":")
        fields[k.strip().lower()] = v.strip()
    return lines[0], fields


def send_frame(s, opcode, payload, mask):
    h = bytes([0x80 | opcode])
    m = 0x80 if mask else 0
    n = len(payload)
    if n < 126:
        h += bytes([m | n])
    elif n < 65536:
        h += bytes([m | 126]) + struct.pack("!H", n)
    else:
        h += bytes([m | 127]) + struct.pack("!Q", n)
    if mask:
        k = os.urandom(4)
        payload = bytes(c ^ k[i % 4] for i, c in enumerate(payload))
        h += k
    s.sendall(h + payload)


def recv_frame(s):
    """Returns (opcode, payload, masked)."""
    b0, b1 = recv_exact(s, 2)
    if not b0 & 0x80:
        raise ValueError("fragmented frame (not used here)")
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack("!H", recv_exact(s, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", recv_exact(s, 8))[0]
    k = recv_exact(s, 4) if b1 & 0x80 else None
    p = recv_exact(s, n)
    if k:
        p = bytes(c ^ k[i % 4] for i, c in enumerate(p))
    return b0 & 0x0F, p, k is not None


def serve(c):
    try:
        c.settimeout(20)
        line, f = read_head(c)
        key = f.get(b"sec-websocket-key", b"")
        if (not line.startswith(b"GET ") or b"websocket" not in f.get(b"upgrade", b"").lower()
                or len(base64.b64decode(key)) != 16):
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return
        c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n")
        send_frame(c, 1, b"hello from server", False)
        while True:
            op, p, masked = recv_frame(c)
            if not masked:  # RFC 6455 5.1: a client frame must be masked
                send_frame(c, 8, struct.pack("!H", 1002), False)
                return
            if op == 1:
                send_frame(c, 1, p.upper(), False)
            elif op == 2:
                send_frame(c, 2, p[::-1], False)
            elif op == 9:
                send_frame(c, 10, p, False)
            elif op == 8:
                send_frame(c, 8, p[:2], False)
                return
    except (OSError, EOFError, ValueError):
        pass
    finally:
        c.close()


def server(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(c,), daemon=True).start()


def client(host, port):
    s = socket.create_connection((host, port), timeout=10)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET /chat HTTP/1.1\r\nHost: " + ("%s:%d" % (host, port)).encode() +
              b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    line, f = read_head(s)
    if not line.startswith(b"HTTP/1.1 101"):
        raise ValueError("status line %r" % line)
    if f.get(b"sec-websocket-accept") != accept_key(key):
        raise ValueError("bad Sec-WebSocket-Accept %r" % f.get(b"sec-websocket-accept"))
    print("handshake ok: 101, Sec-WebSocket-Accept matches")
    op, p, masked = recv_frame(s)
    if (op, p, masked) != (1, b"hello from server", False):
        raise ValueError("greeting %r" % ((op, p[:40], masked),))
    print("server-first frame ok")
    cases = [(1, b"hello websocket", b"HELLO WEBSOCKET"),
             (1, b"x" * 300, b"X" * 300)]
    big = os.urandom(70000)
    cases.append((2, big, big[::-1]))
    cases.append((9, b"ping!", b"ping!"))
    for op, out, want in cases:
        send_frame(s, op, out, True)
        rop, p, masked = recv_frame(s)
        wop = 10 if op == 9 else op
        if rop != wop or p != want or masked:
            raise ValueError("opcode %d, %d bytes: got opcode %d, %d bytes" % (op, len(out), rop, len(p)))
        print("frame ok: opcode %d, %d bytes each way" % (op, len(out)))
    send_frame(s, 8, struct.pack("!H", 1000) + b"bye", True)
    op, p, _ = recv_frame(s)
    if op != 8 or p[:2] != struct.pack("!H", 1000):
        raise ValueError("close answer %r" % ((op, p),))
    if s.recv(1) != b"":
        raise ValueError("data after close")
    print("close ok: 1000 both ways, then EOF")
    print("WS OK")


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]))
    else:
        try:
            client(sys.argv[2], int(sys.argv[3]))
        except Exception as e:
            print("WS FAIL %s: %s" % (type(e).__name__, e))
            sys.exit(1)
