#!/usr/bin/python3
"""HTTP/1 request-smuggling and malformed-request vectors against a proxy.

Two modes:

  h1_vectors.py origin --port PORT --log FILE [--idle SECONDS]
      A deliberately lenient HTTP/1 origin: it accepts bare LF, takes the
      first Content-Length, honours any Transfer-Encoding mentioning
      "chunked", parses chunk sizes loosely, keeps connections alive, answers
      every request with 200 "ok" and appends one line per request line it
      sees to FILE ("conn=N REQ <line>"). Whatever a proxy lets through, this
      origin would act on, so its log is the proof of smuggling. Exits after
      --idle seconds without a connection (default 600).

  h1_vectors.py run --host HOST --port PORT --origin-log FILE --tag TAG
                    [--timeout SECONDS] [--only SUBSTRING] [--list]
      (TAG: one lower-case letter, so that every marker has the same length
      and the chunk sizes in the vectors stay right)
      Sends every vector on its own connection (raw bytes), then checks:
       - reject vectors: the answer is the documented status (400, 431, 501,
         505: core/http1.h http1_err_status) and the connection is closed;
       - opaque vectors (not an HTTP/1 request line: proxy/detect.h says the
         connection is forwarded as opaque TCP): the origin received the
         bytes unchanged and answered itself;
       - controls (valid requests, pipelined and with bodies that look like
         requests): every request answered 200 in order, the origin saw each
         exactly once and never the body as a request;
       - for every vector: the origin never logged the smuggled request
         (marker "<TAG><NN>-smuggled"), and for reject vectors nothing of it.
      Prints one line per check: "PASS <text>" or "FAIL <text>". Every
      connection is bounded by --timeout (default 5 s) and the whole run by
      the number of vectors.

Standard library only; runs with the system /usr/bin/python3.
"""
import argparse
import os
import re
import select
import socket
import sys
import threading
import time

# ---------------------------------------------------------------------------
# The lenient origin


def origin_main(args):
    lock = threading.Lock()
    state = {"conns": 0, "last": time.monotonic()}
    log = open(args.log, "a", buffering=1)

    def note(cid, line):
        text = line.decode("latin-1").encode("unicode_escape").decode("ascii")
        with lock:
            log.write("conn=%d REQ %s\n" % (cid, text))
            log.flush()

    def handle(c, cid):
        c.settimeout(30)
        rf = c.makefile("rb")
        try:
            while True:
                line = rf.readline(1 << 20)
                if not line:
                    return
                line = line.rstrip(b"\r\n")
                if not line:
                    continue  # stray empty lines between requests
                note(cid, line)
                if b" HTTP/" not in line:
                    # HTTP/0.9: no headers follow; answer and close
                    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                              b"Connection: close\r\n\r\nok\n")
                    return
                headers = []
                while True:
                    h = rf.readline(1 << 20)
                    if not h:
                        return
                    h = h.rstrip(b"\r\n")
                    if not h:
                        break
                    headers.append(h)
                te = cl = None
                for h in headers:
                    name, _, value = h.partition(b":")
                    name = name.strip().lower()
                    if name == b"transfer-encoding" and b"chunked" in value.lower():
                        te = True
                    elif name == b"content-length" and cl is None:
                        digits = re.match(rb"\s*\+?(\d+)", value)
                        cl = int(digits.group(1)) if digits else 0
                if te:
                    while True:
                        size_line = rf.readline(1 << 16)
                        if not size_line:
                            return
                        m = re.match(rb"\s*(?:0x)?([0-9a-fA-F]+)", size_line)
                        size = int(m.group(1), 16) if m else 0
                        if size == 0:
                            while True:  # trailers
                                t = rf.readline(1 << 16)
                                if not t or not t.rstrip(b"\r\n"):
                                    break
                            break
                        rf.read(min(size, 1 << 24))
                        rf.readline(1 << 16)
                elif cl:
                    rf.read(min(cl, 1 << 24))
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n"
                          b"Content-Type: text/plain\r\n\r\nok\n")
        except (OSError, ValueError):
            return
        finally:
            try:
                c.close()
            except OSError:
                pass

    srv = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    srv.bind(("::", args.port))
    srv.listen(128)
    while True:
        r, _, _ = select.select([srv], [], [], 1)
        if not r:
            if time.monotonic() - state["last"] > args.idle:
                return 0
            continue
        c, _ = srv.accept()
        state["conns"] += 1
        state["last"] = time.monotonic()
        threading.Thread(target=handle, args=(c, state["conns"]),
                         daemon=True).start()


# ---------------------------------------------------------------------------
# The vectors
#
# Each is (name, kind, status, template). Templates are bytes with "{M}"
# standing for the vector's marker (TAG + number): the first request's path
# is /{M}-a, a hidden second request's path /{M}-smuggled. kind: "reject"
# (answer <status>, then close), "opaque" (forwarded unchanged), "control"
# (<status> = number of 200 answers expected).

H = b"Host: srv\r\n"
SMUG = b"GET /{M}-smuggled HTTP/1.1\r\nHost: srv\r\n\r\n"


def post(headers, body=b""):
    return b"POST /{M}-a HTTP/1.1\r\n" + H + headers + b"\r\n" + body


def chunked(body):
    return post(b"Transfer-Encoding: chunked\r\n", body)


VECTORS = [
    # --- controls: must pass, and prove the origin log works
    ("control: plain GET", "control", 1, b"GET /{M}-a HTTP/1.1\r\n" + H + b"\r\n"),
    ("control: pipelined GET then POST whose body looks like a request",
     "control", 2,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"\r\n"
     b"POST /{M}-b HTTP/1.1\r\n" + H + b"Content-Length: 41\r\n\r\n" + SMUG),
    ("control: chunked POST whose chunk looks like a request", "control", 1,
     chunked(b"29\r\n" + SMUG + b"\r\n0\r\n\r\n")),
    # --- Content-Length and Transfer-Encoding together (CL.TE, TE.CL)
    ("CL.TE: Content-Length then Transfer-Encoding", "reject", 400,
     post(b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n",
          b"0\r\n\r\n" + SMUG)),
    ("TE.CL: Transfer-Encoding then Content-Length", "reject", 400,
     post(b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n",
          b"29\r\n" + SMUG + b"\r\n0\r\n\r\n")),
    ("CL.TE with TE:\\tchunked", "reject", 400,
     post(b"Content-Length: 6\r\nTransfer-Encoding:\tchunked\r\n",
          b"0\r\n\r\n" + SMUG)),
    # --- Content-Length
    ("two differing Content-Length", "reject", 400,
     post(b"Content-Length: 0\r\nContent-Length: 41\r\n", SMUG)),
    ("two identical Content-Length", "reject", 400,
     post(b"Content-Length: 41\r\nContent-Length: 41\r\n", SMUG)),
    ("Content-Length list 41, 41", "reject", 400,
     post(b"Content-Length: 41, 41\r\n", SMUG)),
    ("Content-Length +41", "reject", 400, post(b"Content-Length: +41\r\n", SMUG)),
    ("Content-Length -1", "reject", 400, post(b"Content-Length: -1\r\n", SMUG)),
    ("Content-Length 0x29", "reject", 400, post(b"Content-Length: 0x29\r\n", SMUG)),
    ("Content-Length 4_1", "reject", 400, post(b"Content-Length: 4_1\r\n", SMUG)),
    ("empty Content-Length", "reject", 400, post(b"Content-Length: \r\n", SMUG)),
    ("Content-Length above 2^63", "reject", 400,
     post(b"Content-Length: 99999999999999999999\r\n", SMUG)),
    ("Content-Length with a space before the colon", "reject", 400,
     post(b"Content-Length : 41\r\n", SMUG)),
    # --- Transfer-Encoding obfuscations
    ("Transfer-Encoding with a space before the colon", "reject", 400,
     post(b"Transfer-Encoding : chunked\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding: xchunked", "reject", 400,
     post(b"Transfer-Encoding: xchunked\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding: chunked, identity (chunked not final)", "reject", 400,
     post(b"Transfer-Encoding: chunked, identity\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding: chunked, gzip (chunked not final)", "reject", 400,
     post(b"Transfer-Encoding: chunked, gzip\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding twice", "reject", 400,
     post(b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
          b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding: chunked\\x0b", "reject", 400,
     post(b"Transfer-Encoding: chunked\x0b\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding: \\xa0chunked", "reject", 400,
     post(b"Transfer-Encoding: \xa0chunked\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding: blegh (unknown coding, no chunked)", "reject", 400,
     post(b"Transfer-Encoding: blegh\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding: gzip, chunked (unsupported coding)", "reject", 501,
     post(b"Transfer-Encoding: gzip, chunked\r\n", b"0\r\n\r\n" + SMUG)),
    ("Transfer-Encoding in HTTP/1.0", "reject", 400,
     b"POST /{M}-a HTTP/1.0\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUG),
    # --- field syntax
    ("obs-fold continuation line", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"X-A: a\r\n b\r\n\r\n" + SMUG),
    ("whitespace before the first field line", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n Host: srv\r\n\r\n" + SMUG),
    ("bare LF ending a field line", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\nHost: srv\nX-A: b\r\n\r\n" + SMUG),
    ("bare CR inside a field value", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n" + SMUG),
    ("NUL inside a field value", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n" + SMUG),
    ("control byte \\x01 inside a field value", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n" + SMUG),
    ("empty field name", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b": x\r\n\r\n" + SMUG),
    ("field line without a colon", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"X-A\r\n\r\n" + SMUG),
    ("'@' in a field name", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"X@A: b\r\n\r\n" + SMUG),
    ("byte \\x85 in a field name", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"X\x85A: b\r\n\r\n" + SMUG),
    ("HTTP/1.1 without Host", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\nX-A: b\r\n\r\n" + SMUG),
    ("two Host fields", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\n" + H + b"Host: other\r\n\r\n" + SMUG),
    ("invalid Host", "reject", 400,
     b"GET /{M}-a HTTP/1.1\r\nHost: a b\r\n\r\n" + SMUG),
    # --- chunked bodies
    ("chunk size 0x29", "reject", 400, chunked(b"0x29\r\n" + SMUG + b"\r\n0\r\n\r\n")),
    ("chunk size +29", "reject", 400, chunked(b"+29\r\n" + SMUG + b"\r\n0\r\n\r\n")),
    ("chunk size with leading space", "reject", 400,
     chunked(b" 29\r\n" + SMUG + b"\r\n0\r\n\r\n")),
    ("chunk size of 17 hex digits", "reject", 400,
     chunked(b"00000000000000029\r\n" + SMUG + b"\r\n0\r\n\r\n")),
    ("chunk size followed by junk (1these-bytes)", "reject", 400,
     chunked(b"1these-bytes\r\nx\r\n0\r\n\r\n" + SMUG)),
    ("chunk data not followed by CRLF", "reject", 400,
     chunked(b"2\r\nxxyy\r\n0\r\n\r\n" + SMUG)),
    ("bare LF after a chunk size", "reject", 400,
     chunked(b"29\n" + SMUG + b"\r\n0\r\n\r\n")),
    ("bare CR in a chunk extension", "reject", 400,
     chunked(b"29;a=b\rc\r\n" + SMUG + b"\r\n0\r\n\r\n")),
    ("Content-Length in the trailer section", "reject", 400,
     chunked(b"0\r\nContent-Length: 41\r\n\r\n" + SMUG)),
    # --- limits
    ("101 header fields (limit 100)", "reject", 431,
     b"GET /{M}-a HTTP/1.1\r\n" + H +
     b"".join(b"X-F%d: v\r\n" % i for i in range(101)) + b"\r\n" + SMUG),
    ("head above 64 KiB", "reject", 431,
     b"GET /{M}-a HTTP/1.1\r\n" + H +
     b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 4000) for i in range(17)) +
     b"\r\n" + SMUG),
    # --- request lines the proxy parses
    ("CONNECT", "reject", 501,
     b"CONNECT {M}.example:443 HTTP/1.1\r\nHost: {M}.example:443\r\n\r\n" + SMUG),
    ("HTTP/1.2 (unsupported version)", "reject", 505,
     b"GET /{M}-a HTTP/1.2\r\n" + H + b"\r\n" + SMUG),
    # --- not HTTP/1 request lines: detection falls back to opaque TCP
    ("HTTP/0.9 request line", "opaque", 0, b"GET /{M}-a\r\n"),
    ("bare LF ending the request line", "opaque", 0,
     b"GET /{M}-a HTTP/1.1\n" + H + b"\r\n"),
    ("request line longer than the 1 KiB detection window", "opaque", 0,
     b"GET /{M}-a" + b"x" * 1100 + b" HTTP/1.1\r\n" + H + b"\r\n"),
]


def recv_answer(s, deadline):
    """Reads until EOF/reset or the deadline. Returns (bytes, closed)."""
    data = b""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data, False
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        try:
            d = s.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            return data, True
        if not d:
            return data, True
        data += d


def split_responses(data):
    """Splits a byte stream of responses with Content-Length bodies.
    Returns ([status...], leftover bytes)."""
    out = []
    while True:
        end = data.find(b"\r\n\r\n")
        if end < 0:
            return out, data
        head = data[:end].decode("latin-1")
        m = re.match(r"HTTP/1\.[01] (\d{3})", head)
        if not m:
            return out, data
        cl = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
        n = int(cl.group(1)) if cl else 0
        if len(data) < end + 4 + n:
            return out, data
        out.append(int(m.group(1)))
        data = data[end + 4 + n:]


def send_all(s, payload, deadline):
    """Sends <payload> in pieces, stopping early when the peer answers or
    goes away (an oversized head is refused before it is all sent)."""
    off = 0
    while off < len(payload) and time.monotonic() < deadline:
        r, w, _ = select.select([s], [s], [], 0.5)
        if r:
            return  # an answer already: stop sending
        if not w:
            continue
        try:
            off += s.send(payload[off:off + 4096])
        except (BrokenPipeError, ConnectionResetError):
            return


def run_vector(host, port, payload, kind, expect, timeout):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        s.connect((host, port))
        s.setblocking(False)
        send_all(s, payload, deadline)
        if kind != "reject":
            # controls and opaque vectors: the origin keeps the connection
            # open, so read until the expected answers are complete
            expect = max(expect, 1)
            data = b""
            while time.monotonic() < deadline:
                r, _, _ = select.select([s], [], [], 0.2)
                if r:
                    try:
                        d = s.recv(65536)
                    except ConnectionResetError:
                        break
                    if not d:
                        break
                    data += d
                st, _ = split_responses(data)
                if len(st) >= expect:
                    break
            return data, False
        return recv_answer(s, deadline)
    except OSError as e:
        return ("error %s" % e).encode(), False
    finally:
        s.close()


def run_main(args):
    vectors = [v for v in VECTORS if not args.only or args.only in v[0]]
    if args.list:
        for i, (name, kind, status, _) in enumerate(VECTORS):
            print("%02d %-7s %3s %s" % (i, kind, status, name))
        return 0
    results = []
    for i, (name, kind, expect, tmpl) in enumerate(VECTORS):
        if (name, kind, expect, tmpl) not in vectors:
            continue
        marker = "%s%02d" % (args.tag, i)
        payload = tmpl.replace(b"{M}", marker.encode())
        t0 = time.monotonic()
        data, closed = run_vector(args.host, args.port, payload, kind,
                                  expect, args.timeout)
        results.append((i, name, kind, expect, marker, payload, data, closed,
                        time.monotonic() - t0))
    time.sleep(0.5)  # let the origin log what it got
    try:
        with open(args.origin_log, "rb") as f:
            log = f.read().decode("latin-1")
    except OSError as e:
        print("FAIL cannot read the origin log %s: %s" % (args.origin_log, e))
        return 1
    seen = {}
    for line in log.splitlines():
        m = re.search(r"[/ ](%s\d\d)[-.](\w+)" % re.escape(args.tag), line)
        if m:
            seen.setdefault(m.group(1), []).append((m.group(2), line))
    for (i, name, kind, expect, marker, payload, data, closed, dt) in results:
        got = seen.get(marker, [])
        parts = [g[0] for g in got]
        statuses, _ = split_responses(data)
        first = data.split(b"\r\n", 1)[0][:60]
        label = "h1 %s %s" % (marker, name)
        why = []
        if "smuggled" in parts:
            why.append("the origin saw the smuggled request")
        if kind == "reject":
            m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
            if not m:
                why.append("no HTTP answer (got %r)" % first)
            elif int(m.group(1)) != expect:
                why.append("answered %s, wanted %d" % (m.group(1).decode(), expect))
            if not closed:
                why.append("connection not closed within %gs" % args.timeout)
            if len(statuses) > 1:
                why.append("%d answers on one connection" % len(statuses))
            if got and "smuggled" not in parts:
                why.append("the origin saw the refused request: %s" % got[0][1][:80])
            desc = "%d and close" % expect
        elif kind == "opaque":
            # the origin logs the request line as it got it, escaped
            line = payload.split(b"\n", 1)[0].rstrip(b"\r")
            want = line.decode("latin-1").encode("unicode_escape").decode()
            if not any(g[1].endswith(" REQ " + want) for g in got):
                why.append("the origin did not get the bytes unchanged (log: %s)"
                           % (got[0][1][:80] if got else "nothing"))
            if not statuses or statuses[0] != 200:
                why.append("no answer from the origin (got %r)" % first)
            desc = "forwarded as opaque TCP"
        else:
            if statuses[:expect] != [200] * expect:
                why.append("answers %s, wanted %d x 200" % (statuses, expect))
            want = ["a", "b"][:expect]
            if sorted(parts) != want:
                why.append("origin saw %s, wanted %s" % (parts, want))
            desc = "%d x 200, origin saw each request once" % expect
        if why:
            print("FAIL %s: %s" % (label, "; ".join(why)))
        else:
            print("PASS %s: %s (%.2fs)" % (label, desc, dt))
    sys.stdout.flush()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="mode", required=True)
    o = sub.add_parser("origin")
    o.add_argument("--port", type=int, required=True)
    o.add_argument("--log", required=True)
    o.add_argument("--idle", type=float, default=600)
    r = sub.add_parser("run")
    r.add_argument("--host", required=True)
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--origin-log", required=True)
    r.add_argument("--tag", required=True)
    r.add_argument("--timeout", type=float, default=5)
    r.add_argument("--only", default="")
    r.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.mode == "origin":
        return origin_main(args)
    if not re.match(r"^[a-z]$", args.tag):
        ap.error("--tag must be one lower-case letter")
    return run_main(args)


if __name__ == "__main__":
    sys.exit(main())
