#!/usr/bin/env bash
# HTTP/1 over HTTP/2 between proxies (meshd-orig-proto, DESIGN.md 4), both
# halves together, explicit mode on loopback:
#   curl ─h1─► meshd 1 (outbound, destination service) ─h2c─► meshd 2
#   (inbound) ─h1─► application
# The registry marks the workload meshed (the H2 protocol hint), so meshd 1
# sends every HTTP/1.x request (not an Upgrade) as a stream of one pooled
# h2c connection, marked meshd-orig-proto; meshd 2 turns it back into
# HTTP/1.1. Checks: what the application receives (request line, Host, no
# marker, body framing), what the client receives (status, fields, framing
# for HTTP/1.1 and HTTP/1.0, trailers both ways, HEAD, 204), bodies both ways (40 KB,
# chunked, 20 MB up and down with flow control and memory bounds), many
# requests over one connection between the proxies, clients that give up
# mid-response (no failure for the endpoint), retries of a 5xx and
# failover of a stream the server proxy refused, the proxy's answer when
# the application is gone or its address cannot be connected to at all,
# exact metrics on both proxies.
# Every process started here is ended by the EXIT trap.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
unset MESHD_MODE MESHD_OUTBOUND_ADDR MESHD_INBOUND_ADDR MESHD_ADMIN_ADDR \
	MESHD_INBOUND_FORWARD MESHD_DESTINATION_ADDR MESHD_LOG_LEVEL \
	MESHD_RESPONSE_TIMEOUT MESHD_BALANCER

e2e_setup orig-proto

read -r APP IN2 OUT2 ADM2 OUT1 IN1 ADM1 CTL CADM DEAD IN3 OUT3 ADM3 <<<"$(
	"$PY" - <<'EOF'
import socket
ss = [socket.socket() for _ in range(13)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
)"

# The application: records each request's line and fields (one JSON line
# per request in app.log) and answers by path.
cat > "$tmp/app.py" <<'EOF'
import json, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
port, log = int(sys.argv[1]), sys.argv[2]
lock = threading.Lock()
conns = set()
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def record(self, body=b""):
        with lock:
            conns.add(self.client_address)
            with open(log, "a") as f:
                f.write(json.dumps({"line": self.requestline,
                                    "fields": [[k, v] for k, v in self.headers.items()],
                                    "body": len(body), "conn": len(conns),
                                    "trailers": getattr(self, "trl", [])}) + "\n")
    def body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = b""
            while True:
                n = int(self.rfile.readline().split(b";")[0], 16)
                if n == 0:
                    self.trl = []
                    while True:
                        l = self.rfile.readline()
                        if l in (b"\r\n", b"\n", b""):
                            return out
                        self.trl.append(l.decode().rstrip("\r\n"))
                out += self.rfile.read(n)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))
    def answer(self, code, body, extra=()):
        self.send_response(code)
        for k, v in extra:
            self.send_header(k, v)
        if code not in (204, 304):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code not in (204, 304):
            self.wfile.write(body)
    def do_GET(self):
        self.record()
        p = self.path
        if p == "/nocontent":
            return self.answer(204, b"")
        if p == "/fail":
            return self.answer(503, b"")
        if p.startswith("/big/"):
            n = int(p[5:])
            self.send_response(200)
            self.send_header("Content-Length", str(n))
            self.end_headers()
            chunk = bytes(range(256)) * 256
            while n > 0:
                k = min(n, len(chunk))
                self.wfile.write(chunk[:k])
                n -= k
            return
        if p == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "x-checksum")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world\n"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\nx-checksum: 42\r\n\r\n")
            return
        self.answer(200, b"hello from the app\n", [("X-App", "yes"), ("Connection", "keep-alive")])
    def do_HEAD(self):
        self.record()
        self.answer(200, b"x" * 1234)
    def do_POST(self):
        body = self.body()
        self.record(body)
        self.answer(200, body)
    do_PUT = do_POST
ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
EOF
"$PY" "$tmp/app.py" "$APP" "$tmp/app.log" & pids+=($!)

# meshd 2: the application's sidecar (inbound, forwarding to the app);
# meshd 3: a second endpoint whose application is not listening
"$MESHD_BIN" proxy --mode explicit --inbound-addr 127.0.0.2:$IN2 \
	--inbound-forward 127.0.0.1:$APP --outbound-addr 127.0.0.1:$OUT2 \
	--admin-addr 127.0.0.1:$ADM2 > "$tmp/proxy2.log" 2>&1 & pids+=($!)
P2=$!
"$MESHD_BIN" proxy --mode explicit --inbound-addr 127.0.0.3:$IN2 \
	--inbound-forward 127.0.0.1:$DEAD --outbound-addr 127.0.0.1:$OUT3 \
	--admin-addr 127.0.0.1:$ADM3 > "$tmp/proxy3.log" 2>&1 & pids+=($!)
cat > "$tmp/reg.yaml" <<EOF
services:
  - name: web
    namespace: t
    ports: [{port: 80, target_port: $IN2}]
    selector: {app: web}
    routes:
      - {name: fail, path_exact: /fail, retryable: true}
  - name: gone
    namespace: t
    ports: [{port: 80, target_port: $IN2}]
    selector: {app: gone}
  - name: plain
    namespace: t
    ports: [{port: 80, target_port: $IN2}]
    selector: {app: plain}
  - name: mcast
    namespace: t
    ports: [{port: 80, target_port: $IN2}]
    selector: {app: mcast}
workloads:
  - {name: web, namespace: t, addresses: [127.0.0.2], labels: {app: web}}
  - {name: gone, namespace: t, addresses: [127.0.0.3], labels: {app: gone}}
  - {name: plain, namespace: t, addresses: [127.0.0.2], labels: {app: plain}, meshed: false}
  - {name: mcast, namespace: t, addresses: [224.0.0.1], labels: {app: mcast}}
EOF
"$MESHD_BIN" controller --registry "$tmp/reg.yaml" \
	--destination-addr 127.0.0.1:$CTL --admin-addr 127.0.0.1:$CADM \
	> "$tmp/ctl.log" 2>&1 & pids+=($!)
"$MESHD_BIN" proxy --mode explicit --outbound-addr 127.0.0.1:$OUT1 \
	--inbound-addr 127.0.0.1:$IN1 --admin-addr 127.0.0.1:$ADM1 \
	--destination-addr 127.0.0.1:$CTL > "$tmp/proxy1.log" 2>&1 & pids+=($!)
P1=$!

e2e_wait_port $APP; e2e_wait_port $IN2 127.0.0.2; e2e_wait_port $IN2 127.0.0.3
e2e_wait_port $CTL; e2e_wait_port $OUT1; e2e_wait_port $ADM1

W="http://127.0.0.1:$OUT1"
cw() { curl -s -m 10 -H "Host: web.t:80" "$@"; }
last_app() { tail -n 1 "$tmp/app.log"; }
metric() {
	curl -s -m 5 "http://127.0.0.1:$1/metrics" | awk -v m="$2" '
		index($0, m) == 1 { s += $NF } END { printf "%d\n", s }'
}
rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }

# ---- a GET, both ends ----
out=$(cw -D "$tmp/h1" "$W/hello?q=1")
check "GET through the upgraded path answers the app's body" test "$out" = "hello from the app"
check_out "the client sees the app's status and fields, content-length kept" \
	'^HTTP/1.1 200 OK' cat "$tmp/h1"
check "the client sees X-App and Content-Length: 19, no meshd-orig-proto, no transfer-encoding" \
	sh -c 'grep -qi "^x-app: yes" "$1" && grep -qi "^content-length: 19" "$1" &&
		! grep -qi "meshd-orig-proto\|transfer-encoding" "$1"' _ "$tmp/h1"
l=$(last_app)
check "the app gets HTTP/1.1, the origin-form target and Host first" \
	"$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["line"]=="GET /hello?q=1 HTTP/1.1", r; assert r["fields"][0]==["Host","web.t:80"], r' "$l"
check "no meshd-orig-proto reaches the app" \
	"$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); assert not [f for f in r["fields"] if f[0].lower()=="meshd-orig-proto"], r' "$l"

# ---- bodies ----
head -c 40000 /dev/urandom | base64 -w0 > "$tmp/b40"
check "POST with content-length: echoed" \
	sh -c 'curl -s -m 10 -H "Host: web.t:80" --data-binary @"$1" "$2/echo" | cmp -s - "$1"' _ "$tmp/b40" "$W"
check "POST chunked by the client: echoed" \
	sh -c 'curl -s -m 10 -H "Host: web.t:80" -H "Transfer-Encoding: chunked" --data-binary @"$1" "$2/echo" | cmp -s - "$1"' _ "$tmp/b40" "$W"
l=$(last_app)
check "a chunked request reaches the app chunked (no content-length was given)" \
	"$PY" -c 'import json,sys; r=json.loads(sys.argv[1]); f=dict((k.lower(),v) for k,v in r["fields"]); assert f.get("transfer-encoding")=="chunked" and r["body"]==53336, r' "$l"
req='POST /echo HTTP/1.1\r\nHost: web.t:80\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 42\r\nx-other: b c\r\n\r\n'
out=$(printf "$req" | timeout 10 socat -t 5 - TCP:127.0.0.1:$OUT1 | tr -d '\r')
l=$(last_app)
check "request trailers cross the upgraded path: the app gets them after the chunked body" \
	sh -c 'printf "%s" "$1" | grep -q "\"trailers\": \[\"x-sum: 42\", \"x-other: b c\"\]" &&
	       printf "%s" "$1" | grep -q "\"body\": 5," && printf "%s" "$2" | grep -q "^hello\$"' _ "$l" "$out"
out=$(cw --raw -D "$tmp/h2" "$W/chunked")
check_out "a chunked response with trailers reaches an HTTP/1.1 client chunked, trailer kept" \
	'x-checksum: 42' printf '%s' "$out"
check "its decoded body is whole" \
	sh -c 'curl -s -m 10 -H "Host: web.t:80" "$1/chunked" | grep -qx "hello chunked world"' _ "$W"
check "HEAD: content-length of the representation, no body" \
	sh -c 'h=$(curl -s -m 10 -I -H "Host: web.t:80" "$1/x") && printf "%s" "$h" | grep -qi "^content-length: 1234" && printf "%s" "$h" | grep -q "^HTTP/1.1 200"' _ "$W"
check "204: no body, no framing fields" \
	sh -c 'h=$(curl -s -m 10 -D - -o /dev/null -H "Host: web.t:80" "$1/nocontent") && printf "%s" "$h" | grep -q "^HTTP/1.1 204" && ! printf "%s" "$h" | grep -qi "transfer-encoding"' _ "$W"
check "HTTP/1.0 client: answered, the app still gets HTTP/1.1" \
	sh -c 'b=$(curl -s -m 10 -0 -H "Host: web.t:80" "$1/hello") && [ "$b" = "hello from the app" ] && tail -n 1 "$2" | grep -q "HTTP/1.1"' _ "$W" "$tmp/app.log"

# ---- large bodies, flow control, memory ----
want=$("$PY" -c 'import hashlib; c=bytes(range(256))*256; print(hashlib.sha256((c*400)[:20000000]).hexdigest())')
got=$(cw "$W/big/20000000" | sha256sum | cut -d' ' -f1)
check "20 MB response: every byte" test "$want" = "$got"
head -c 20000000 /dev/urandom > "$tmp/b20m"
got=$(cw --data-binary @"$tmp/b20m" "$W/echo" | sha256sum | cut -d' ' -f1)
check "20 MB request echoed: every byte both ways" test "$got" = "$(sha256sum < "$tmp/b20m" | cut -d' ' -f1)"
r1=$(rss_kb $P1); r2=$(rss_kb $P2)
# the sanitizer build's shadow memory and quarantine make RSS meaningless
rlim=8192
"$MESHD_BIN" version 2>/dev/null | grep -q 'built san' && rlim=262144
check "RSS after the 20 MB transfers stays small (meshd 1 $r1 KiB, meshd 2 $r2 KiB; < $rlim KiB)" \
	test "$r1" -lt $rlim -a "$r2" -lt $rlim

# ---- one connection between the proxies ----
o0=$(metric $ADM1 'tcp_open_total{direction="outbound",peer="dst"')
seq 40 | xargs -P 20 -I{} curl -s -m 10 -o /dev/null -w '%{http_code}\n' -H "Host: web.t:80" "$W/p{}" > "$tmp/par"
o1=$(metric $ADM1 'tcp_open_total{direction="outbound",peer="dst"')
check "40 requests from 20 parallel clients: all 200" test "$(grep -c '^200$' "$tmp/par")" = 40
check "they shared the pooled h2 connection (outbound connections opened: $o0 -> $o1)" \
	test "$o1" = "$o0"
check "keep-alive: three requests on one client connection" \
	sh -c 'n=$(curl -s -m 10 -o /dev/null -w "%{http_code}\n" -H "Host: web.t:80" "$1/a" "$1/b" "$1/c" | grep -c "^200$"); [ "$n" = 3 ]' _ "$W"

# ---- clients that give up are not endpoint failures ----
# Eight clients in a row close their connection after the first 64 KB of a
# 20 MB response, on the upgraded path (web) and on plain HTTP/1.1
# (plain). Failure accrual ejects an endpoint after 7 consecutive
# failures, and each service has one: had the cancellations counted, the
# next request would wait in the service's queue for the ejection's end.
for h in web.t plain.t; do
	u0=$(metric $ADM1 outbound_balancer_unavailable_total)
	q0=$(metric $ADM1 outbound_balancer_queued_total)
	for i in 1 2 3 4 5 6 7 8; do
		curl -s -m 10 -H "Host: $h:80" "$W/big/20000000" 2>/dev/null | head -c 65536 > /dev/null
	done
	code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Host: $h:80" "$W/after-cancel")
	u1=$(metric $ADM1 outbound_balancer_unavailable_total)
	q1=$(metric $ADM1 outbound_balancer_queued_total)
	check "$h: after 8 clients gave up mid-response the endpoint still serves at once ($code; queued $q0 -> $q1, failed fast $u0 -> $u1)" \
		test "$code" = 200 -a "$q1" = "$q0" -a "$u1" = "$u0"
done

# ---- failures ----
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Host: gone.t:80" "$W/x")
hdr=$(curl -s -m 10 -D - -o /dev/null -H "Host: gone.t:80" "$W/x")
check "the application gone behind the server proxy: 502 ($code)" test "$code" = 502
check_out "with the server proxy's meshd-proxy-error" 'meshd-proxy-error: connect failed' printf '%s' "$hdr"
# an endpoint the kernel cannot connect to at all (a multicast address:
# connect itself fails): meshd 1 answers for the h2 link it could not open
hdr=$(curl -s -m 10 -D - -o /dev/null -H "Host: mcast.t:80" "$W/x" | tr -d '\r')
check_out "a meshed endpoint refused at once: 502 connect failed from meshd 1" \
	'^HTTP/1.1 502.*meshd-proxy-error: connect failed' printf '%s' "$(printf '%s' "$hdr" | tr '\n' ' ')"
code=$(cw -o /dev/null -w '%{http_code}' "$W/fail")
check "a 5xx from the app reaches the client when no other endpoint can take the retry ($code)" test "$code" = 503
code=$(curl -s -m 10 -o /dev/null -w '%{http_code}' -H "Host: plain.t:80" "$W/plain")
l=$(last_app)
check "an unmeshed workload gets plain HTTP/1.1 from meshd 1 ($code)" \
	sh -c '[ "$1" = 200 ] && printf "%s" "$2" | grep -q "GET /plain HTTP/1.1"' _ "$code" "$l"
check "WebSocket-style Upgrade requests are not upgraded to h2 (forwarded as HTTP/1.1)" \
	sh -c 'curl -s -m 10 -o /dev/null -H "Host: web.t:80" -H "Connection: Upgrade" -H "Upgrade: websocket" "$1/ws"; tail -n 1 "$2" | grep -qi "upgrade"' _ "$W" "$tmp/app.log"

# ---- metrics ----
n1=$(metric $ADM1 'response_total{direction="outbound",authority="web.t:80"')
n2=$(metric $ADM2 'response_total{direction="inbound"')
check "meshd 1 and meshd 2 both counted the exchanges (outbound web.t $n1, inbound $n2)" \
	test "$n1" -ge 50 -a "$n2" -ge 50
check "both proxies are still up" sh -c 'kill -0 $1 && kill -0 $2' _ $P1 $P2
