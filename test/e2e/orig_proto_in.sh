#!/usr/bin/env bash
# meshd proxy, inbound half of HTTP/1-over-HTTP/2 (meshd-orig-proto), explicit
# mode on loopback: a raw h2c client (python3-h2) sends streams marked
# "meshd-orig-proto: HTTP/1.1" to the inbound listener; the proxy forwards
# them as HTTP/1.1 to a small Python application that records what it got.
# Checked: request translation (request line, Host first, fields, cookies,
# absolute-form, the mark removed), bodies with content-length, chunked with
# trailers both ways, HEAD/204, 100-continue, close-delimited responses, a
# 10 MB response under flow control (proxy RSS bounded), the application
# cutting a response (RST_STREAM, proxy stays up), no application (502 with
# meshd-proxy-error), a 101 refused, concurrent streams, keep-alive reuse,
# an invalid mark (400), an unmarked request still going h2 -> h2, and the
# inbound request/response metrics, exactly.
#
# Every process started here is recorded and ended by the EXIT trap; every
# client call has a timeout.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
unset MESHD_MODE MESHD_OUTBOUND_ADDR MESHD_INBOUND_ADDR MESHD_ADMIN_ADDR \
	MESHD_INBOUND_FORWARD MESHD_TCP_ROUTE MESHD_OPAQUE_PORTS \
	MESHD_LOG_LEVEL MESHD_LOG_FORMAT MESHD_WORKLOAD_LABELS \
	MESHD_ENABLE_SHUTDOWN MESHD_DETECT_TIMEOUT MESHD_SHUTDOWN_GRACE

if ! "$PY" -c 'import h2' 2>/dev/null; then
	echo "ok 1 - orig_proto_in # SKIP $PY lacks python3-h2"
	exit 0
fi

e2e_setup orig-in

read -r P_APP P_DEAD OUT IN ADM OUT2 IN2 ADM2 <<<"$(
	"$PY" - <<'EOF'
import socket
ss = [socket.socket() for _ in range(8)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
)"


cat > "$tmp/app.py" <<'EOF'
# app.py PORT LOG: an HTTP/1.1 application that appends one JSON line per
# request (connection number, request line, fields, body, trailers) to LOG
# and answers by path.
import json, socket, sys, threading, time

port, logpath = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
nconn = [0]

def log(rec):
    with lock:
        with open(logpath, "a") as f:
            f.write(json.dumps(rec) + "\n")

def handle(sock, cid):
    f = sock.makefile("rb")
    try:
        while True:
            line = f.readline()
            if not line:
                return
            if line.startswith(b"PRI * HTTP/2.0"):
                log({"conn": cid, "h2preface": True})
                return
            reqline = line.decode("latin1").rstrip("\r\n")
            fields = []
            while True:
                l = f.readline()
                if l in (b"\r\n", b""):
                    break
                fields.append(l.decode("latin1").rstrip("\r\n"))
            hd = {}
            for x in fields:
                k, v = x.split(":", 1)
                hd.setdefault(k.strip().lower(), v.strip())
            body, trailers = b"", []
            if "content-length" in hd:
                body = f.read(int(hd["content-length"]))
            elif hd.get("transfer-encoding", "").lower() == "chunked":
                slow = reqline.split(" ")[1].startswith("/sink")
                while True:
                    if slow:
                        time.sleep(0.002)
                    sz = int(f.readline().split(b";")[0], 16)
                    if sz == 0:
                        while True:
                            l = f.readline()
                            if l in (b"\r\n", b""):
                                break
                            trailers.append(l.decode("latin1").rstrip("\r\n"))
                        break
                    body += f.read(sz)
                    f.readline()
            method, path, ver = reqline.split(" ")
            log({"conn": cid, "line": reqline, "fields": fields,
                 "body_len": len(body), "body": body[:64].decode("latin1"),
                 "trailers": trailers})
            p = path.split("?")[0]
            if p.startswith("http://"):
                p = "/" + p.split("/", 3)[3]
            if p == "/sink":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d"
                             % (len(str(len(body))), len(body)))
            elif p == "/echo":
                extra = "X-Got-Trailers: %s\r\n" % "|".join(trailers)
                sock.sendall(("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n"
                              % (len(body), extra)).encode() + body)
            elif p == "/chunked":
                sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                             b"Trailer: x-trl\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n"
                             b"0\r\nX-Trl: t1\r\nX-Other: t2\r\n\r\n")
            elif p == "/head":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                             b"X-Head: 1\r\n\r\n")
            elif p == "/204":
                sock.sendall(b"HTTP/1.1 204 No Content\r\nX-N: 1\r\n\r\n")
            elif p == "/big":
                n = 10 * 1024 * 1024
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % n)
                piece = b"x" * 65536
                for _ in range(n // 65536):
                    sock.sendall(piece)
            elif p == "/cut":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                             + b"y" * 1000)
                time.sleep(0.1)
                sock.shutdown(socket.SHUT_RDWR)
                return
            elif p == "/close":
                sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n"
                             b"until-close")
                sock.shutdown(socket.SHUT_RDWR)
                return
            elif p == "/continue":
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n"
                             b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif p == "/101":
                sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\n"
                             b"Upgrade: x\r\nConnection: upgrade\r\n\r\n")
                time.sleep(0.2)
                return
            elif p == "/slow":
                time.sleep(0.4)
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
                             b"X-App: yes\r\nKeep-Alive: timeout=5\r\n"
                             b"Connection: keep-alive, x-hop\r\nX-Hop: gone\r\n"
                             b"Set-Cookie: s=1\r\n\r\nhello")
    except Exception as e:  # a broken client: just close
        log({"conn": cid, "error": repr(e)})
    finally:
        try:
            sock.close()
        except OSError:
            pass

ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
while True:
    s, _ = ls.accept()
    nconn[0] += 1
    threading.Thread(target=handle, args=(s, nconn[0]), daemon=True).start()
EOF

cat > "$tmp/client.py" <<'EOF'
# client.py: the h2c client and every check (TAP lines).
import json, os, re, socket, sys, time, urllib.request
import h2.config, h2.connection, h2.events

IN, IN2, ADM, LOG = (int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]),
                     sys.argv[4])
PXPID, SAN = int(sys.argv[5]), sys.argv[6] == "1"
n = [0]
expect = {}          # status -> responses the inbound metrics must count

def report(ok, name, info=""):
    n[0] += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n[0], name))
    if not ok and info:
        for l in str(info).splitlines()[:20]:
            print("#   " + l)
    sys.stdout.flush()

class Client:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=20)
        cfg = h2.config.H2Configuration(client_side=True,
                                        header_encoding="utf-8")
        self.c = h2.connection.H2Connection(config=cfg)
        self.c.initiate_connection()
        self.st = {}
        self.closed = False
        self.flush()

    def flush(self):
        d = self.c.data_to_send()
        if d:
            self.s.sendall(d)

    def pump(self, slow=0):
        d = self.s.recv(65536)
        if not d:
            self.closed = True
            return
        if slow:
            time.sleep(slow)
        for ev in self.c.receive_data(d):
            sid = getattr(ev, "stream_id", None)
            r = self.st.get(sid)
            if isinstance(ev, h2.events.InformationalResponseReceived):
                r["info"].append(dict(ev.headers))
            elif isinstance(ev, h2.events.ResponseReceived):
                r["headers"] = ev.headers
                r["status"] = int(dict(ev.headers)[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                r["data"] += ev.data
                self.c.acknowledge_received_data(
                    ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                r["trailers"] = ev.headers
            elif isinstance(ev, h2.events.StreamEnded):
                r["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if r is not None:
                    r["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.closed = True
        self.flush()

    def open(self, path, method="GET", extra=(), body=None, trailers=None,
             mark="HTTP/1.1", authority="app.example"):
        sid = self.c.get_next_available_stream_id()
        hs = [(":method", method), (":scheme", "http"), (":path", path)]
        if authority is not None:
            hs.append((":authority", authority))
        if mark is not None:
            hs.append(("meshd-orig-proto", mark))
        hs += list(extra)
        self.st[sid] = {"status": None, "headers": [], "info": [],
                        "data": b"", "trailers": None, "ended": False,
                        "reset": None}
        self.c.send_headers(sid, hs, end_stream=body is None and not trailers)
        self.flush()
        if body is not None:
            off = 0
            while off < len(body):
                w = min(self.c.local_flow_control_window(sid),
                        self.c.max_outbound_frame_size, len(body) - off)
                if w <= 0:
                    self.pump()
                    continue
                self.c.send_data(sid, body[off:off + w])
                off += w
                self.flush()
            if trailers:
                self.c.send_headers(sid, trailers, end_stream=True)
            else:
                self.c.end_stream(sid)
        elif trailers:
            self.c.send_headers(sid, trailers, end_stream=True)
        self.flush()
        return sid

    def wait(self, sids, slow=0):
        t0 = time.time()
        while any(not self.st[s]["ended"] and self.st[s]["reset"] is None
                  for s in sids):
            if self.closed or time.time() - t0 > 30:
                break
            self.pump(slow)
        return [self.st[s] for s in sids]

    def req(self, *a, **kw):
        return self.wait([self.open(*a, **kw)])[0]

def hget(r, name, where="headers"):
    for k, v in (r[where] or []):
        if k == name:
            return v
    return None

def names(r, where="headers"):
    return [k for k, _ in (r[where] or [])]

def applog():
    with open(LOG) as f:
        return [json.loads(l) for l in f if l.strip()]

def count(status):
    expect[status] = expect.get(status, 0) + 1

cl = Client(IN)

# ---- GET translation ----
before = len(applog())
r = cl.req("/get?q=1", extra=[("x-req", "v1"), ("cookie", "a=1"),
                               ("cookie", "b=2"), ("te", "trailers")])
count(200)
recs = applog()[before:]
rec = recs[0] if recs else {}
report(r["status"] == 200 and r["data"] == b"hello", "GET: 200 and its body",
       r)
report(rec.get("line") == "GET /get?q=1 HTTP/1.1",
       "GET: request line in origin form, HTTP/1.1", rec)
report(rec.get("fields", [""])[0] == "Host: app.example",
       "GET: Host from :authority, first", rec)
low = [x.lower() for x in rec.get("fields", [])]
report(not any(x.startswith("meshd-orig-proto") for x in low),
       "GET: meshd-orig-proto does not reach the application", rec)
report("x-req: v1" in low and "cookie: a=1; b=2" in low,
       "GET: fields forwarded, cookie crumbs joined", rec)
report(hget(r, "meshd-orig-proto") == "HTTP/1.1",
       "GET: response carries meshd-orig-proto: HTTP/1.1", r["headers"])
nm = names(r)
report("x-app" in nm and "set-cookie" in nm and "content-length" in nm and
       not ({"connection", "keep-alive", "x-hop", "transfer-encoding"} & set(nm)),
       "GET: response fields kept, hop-by-hop ones dropped", nm)

# ---- HTTP/1.0 and absolute-form marks ----
before = len(applog())
r = cl.req("/get/abs", mark="HTTP/1.0 ; absolute-form")
count(200)
rec = applog()[before] if len(applog()) > before else {}
report(r["status"] == 200 and
       rec.get("line") == "GET http://app.example/get/abs HTTP/1.1",
       "HTTP/1.0 with absolute-form: absolute target, HTTP/1.1 upstream",
       rec)

# ---- POST with content-length ----
before = len(applog())
body = b"p" * 3000
r = cl.req("/echo", method="POST", body=body,
           extra=[("content-length", str(len(body)))])
count(200)
rec = applog()[before] if len(applog()) > before else {}
low = [x.lower() for x in rec.get("fields", [])]
report(r["status"] == 200 and r["data"] == body and
       "content-length: 3000" in low and
       not any(x.startswith("transfer-encoding") for x in low),
       "POST with content-length: forwarded as is", rec)

# ---- POST without content-length, with trailers: chunked ----
before = len(applog())
body = bytes(range(256)) * 1200   # 300 KiB: more than the windows
r = cl.req("/echo", method="POST", body=body,
           trailers=[("x-sum", "42"), ("x-two", "2")])
count(200)
rec = applog()[before] if len(applog()) > before else {}
low = [x.lower() for x in rec.get("fields", [])]
report("transfer-encoding: chunked" in low and
       rec.get("body_len") == len(body),
       "POST without content-length: chunked to the application, whole",
       {k: rec.get(k) for k in ("fields", "body_len")})
report([t.lower() for t in rec.get("trailers", [])] ==
       ["x-sum: 42", "x-two: 2"],
       "POST: h2 trailers became chunked trailers", rec.get("trailers"))
report(r["status"] == 200 and r["data"] == body, "POST: echoed body back",
       len(r["data"]))

# ---- chunked response with trailers ----
r = cl.req("/chunked")
count(200)
report(r["status"] == 200 and r["data"] == b"abcdefg" and
       r["trailers"] is not None and
       dict(r["trailers"]).get("x-trl") == "t1" and
       dict(r["trailers"]).get("x-other") == "t2",
       "chunked response: DATA decoded, trailers as h2 trailers", r)
report("transfer-encoding" not in names(r) and "trailer" in names(r),
       "chunked response: no transfer-encoding field", names(r))

# ---- HEAD, 204, 100-continue, close-delimited ----
r = cl.req("/head", method="HEAD")
count(200)
report(r["status"] == 200 and r["data"] == b"" and r["ended"] and
       hget(r, "x-head") == "1", "HEAD: head only", r)
r = cl.req("/204")
count(204)
report(r["status"] == 204 and r["data"] == b"" and r["ended"],
       "204: no body", r)
r = cl.req("/continue", method="POST", body=b"zz",
           extra=[("expect", "100-continue"), ("content-length", "2")])
count(200)
report(r["status"] == 200 and r["data"] == b"ok" and
       [i.get(":status") for i in r["info"]] == ["100"],
       "100 Continue forwarded as an interim head", r)
r = cl.req("/close")
count(200)
report(r["status"] == 200 and r["data"] == b"until-close" and r["ended"]
       and r["reset"] is None, "close-delimited response ends the stream", r)

# ---- keep-alive: sequential requests share one application connection ----
before = len(applog())
for i in range(3):
    cl.req("/get/ka%d" % i)
    count(200)
conns = [x.get("conn") for x in applog()[before:]]
report(len(conns) == 3 and len(set(conns)) == 1,
       "keep-alive: 3 sequential requests on one application connection",
       conns)

# ---- concurrent streams on one h2 connection ----
t0 = time.time()
sids = [cl.open("/slow?i=%d" % i) for i in range(5)]
rs = cl.wait(sids)
for _ in sids:
    count(200)
el = time.time() - t0
report(all(x["status"] == 200 and x["data"] == b"slow" for x in rs) and
       el < 1.6, "5 concurrent streams answered in parallel (%.2fs)" % el,
       rs)

# ---- 10 MB response under flow control ----
r = cl.wait([cl.open("/big")], slow=0.0005)[0]
count(200)
report(r["status"] == 200 and len(r["data"]) == 10 * 1024 * 1024 and
       r["ended"], "10 MB response arrives whole", len(r["data"]))
hwm = 0
with open("/proc/%d/status" % PXPID) as f:
    for l in f:
        if l.startswith("VmHWM:"):
            hwm = int(l.split()[1])
if SAN:
    report(True, "proxy peak RSS (skipped: sanitizer build) # SKIP")
else:
    report(0 < hwm < 8 * 1024, "proxy peak RSS < 8 MB (%d kB)" % hwm)

# ---- 4 MB upload to an application reading slowly: back-pressure ----
t0 = time.time()
r = cl.req("/sink", method="POST", body=b"u" * (4 * 1024 * 1024))
count(200)
report(r["status"] == 200 and r["data"] == str(4 * 1024 * 1024).encode(),
       "4 MB chunked upload to a slow reader arrives whole (%.1fs)"
       % (time.time() - t0), r)
hwm = 0
with open("/proc/%d/status" % PXPID) as f:
    for l in f:
        if l.startswith("VmHWM:"):
            hwm = int(l.split()[1])
if SAN:
    report(True, "proxy peak RSS after the upload (skipped: sanitizer build) # SKIP")
else:
    report(0 < hwm < 8 * 1024, "proxy peak RSS after the upload < 8 MB (%d kB)" % hwm)

# ---- the application cuts the response ----
r = cl.req("/cut")
count(200)
report(r["status"] == 200 and r["reset"] is not None and not r["ended"],
       "application closing mid-response: RST_STREAM", r["reset"])
r = cl.req("/get/after-cut")
count(200)
report(r["status"] == 200 and r["data"] == b"hello",
       "next request after the cut succeeds", r)

# ---- a 101 is refused ----
r = cl.req("/101")
count(502)
report(r["status"] == 502 and hget(r, "meshd-proxy-error") is not None,
       "101 from the application: 502", r)

# ---- invalid mark: 400, nothing reaches the application ----
before = len(applog())
r = cl.req("/get/bad", mark="HTTP/2")
count(400)
r2 = cl.req("/get/bad2", mark="HTTP/1.1; relative")
count(400)
report(r["status"] == 400 and r2["status"] == 400 and
       hget(r, "meshd-proxy-error") is not None and
       len(applog()) == before, "invalid meshd-orig-proto: 400", (r, r2))

# ---- client reset mid-response: the upstream is closed, proxy fine ----
sid = cl.open("/big")
while cl.st[sid]["status"] is None and not cl.closed:
    cl.pump()
cl.c.reset_stream(sid, 8)
cl.flush()
count(200)
r = cl.req("/get/after-reset")
count(200)
report(r["status"] == 200 and r["data"] == b"hello",
       "client reset mid-response, then a request succeeds", r)

# ---- unmarked: still h2 -> h2 (the application sees a preface) ----
before = len(applog())
r = cl.req("/get/h2", mark=None)
count(502)
recs = applog()[before:]
report(r["status"] == 502 and any(x.get("h2preface") for x in recs),
       "request without meshd-orig-proto still goes upstream as h2",
       (r, recs))

# ---- no application: 502 with meshd-proxy-error (second proxy) ----
c2 = Client(IN2)
r = c2.req("/get")
report(r["status"] == 502 and hget(r, "meshd-proxy-error") is not None,
       "application not listening: 502 with meshd-proxy-error", r)

# ---- inbound metrics: exact ----
time.sleep(0.3)
m = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % ADM,
                           timeout=10).read().decode()
got, reqs = {}, 0
for l in m.splitlines():
    if l.startswith('response_total{direction="inbound"'):
        st = int(re.search(r'status_code="(\d+)"', l).group(1))
        got[st] = got.get(st, 0) + int(float(l.rsplit(" ", 1)[1]))
    if l.startswith('request_total{direction="inbound"'):
        reqs += int(float(l.rsplit(" ", 1)[1]))
report(got == expect, "inbound response_total by status: %s" % expect, got)
report(reqs == sum(expect.values()),
       "inbound request_total = %d" % sum(expect.values()), reqs)
EOF

"$PY" "$tmp/app.py" "$P_APP" "$tmp/app.log" >"$tmp/app.out" 2>&1 &
pids+=($!)
M=$MESHD_BIN
"$M" proxy --mode explicit --outbound-addr "127.0.0.1:$OUT" \
	--inbound-addr "127.0.0.1:$IN" --admin-addr "127.0.0.1:$ADM" \
	--inbound-forward "127.0.0.1:$P_APP" --log-level warn \
	>"$tmp/proxy.log" 2>&1 &
PX=$!
pids+=($PX)
"$M" proxy --mode explicit --outbound-addr "127.0.0.1:$OUT2" \
	--inbound-addr "127.0.0.1:$IN2" --admin-addr "127.0.0.1:$ADM2" \
	--inbound-forward "127.0.0.1:$P_DEAD" --log-level warn \
	>"$tmp/proxy2.log" 2>&1 &
pids+=($!)
for p in $P_APP $ADM $ADM2; do
	e2e_wait_port "$p" || { e2e_report 1 "port $p listening" "$(tail -5 "$tmp"/*.log)"; exit 0; }
done
: > "$tmp/app.log"
san=0
case "$M" in */san/*) san=1 ;; esac
timeout 120 "$PY" "$tmp/client.py" "$IN" "$IN2" "$ADM" "$tmp/app.log" "$PX" \
	"$san" > "$tmp/client.out" 2>&1
rc=$?
cat "$tmp/client.out"
n=$(grep -cE '^(not )?ok ' "$tmp/client.out")
e2e_n=$n
[ "$rc" = 0 ] || e2e_report 1 "client ran to its end" "rc=$rc; $(tail -5 "$tmp/client.out")"
check "proxy still running" kill -0 "$PX"
# a graceful stop, so that a sanitizer build reports leaks at exit
kill -TERM "$PX" 2>/dev/null
for _ in $(seq 100); do kill -0 "$PX" 2>/dev/null || break; sleep 0.1; done
wait "$PX"
check "proxy exits 0 after SIGTERM" test "$?" = 0
check "proxy logged no sanitizer report" \
	bash -c "! grep -E 'ERROR: (Address|Leak)Sanitizer|runtime error' '$tmp/proxy.log' '$tmp/proxy2.log'"
