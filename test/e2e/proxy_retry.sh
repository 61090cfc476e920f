#!/usr/bin/env bash
# meshd proxy, explicit mode on loopback: the HTTP/1.1 request path's
# second chances.
#  - A pooled keep-alive connection that the server closed (or reset) just
#    as a request went out: an idempotent request without a body is sent
#    again on a fresh connection; a POST is not (502).
#  - With the destination service (meshd controller and a registry file):
#    a retryable route retries a 5xx on another endpoint, from the budget,
#    replaying a POST body; a route that is not retryable passes the 5xx
#    through; a request that reached no application (connection refused,
#    or the endpoint's proxy could not connect to its app) fails over to
#    another endpoint whatever its route; a route timeout answers 504, and
#    meshd-timeout shortens it; the queue in front of the balancer.
# Origins: small Python servers: one whose connections answer their first
# request and then close (or reset) on the second; "good" and "bad"
# endpoints of a registry service.
# Every process started here is ended by the EXIT trap.
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
unset MESHD_MODE MESHD_OUTBOUND_ADDR MESHD_INBOUND_ADDR MESHD_ADMIN_ADDR \
	MESHD_INBOUND_FORWARD MESHD_DESTINATION_ADDR MESHD_LOG_LEVEL \
	MESHD_RESPONSE_TIMEOUT MESHD_BALANCER

e2e_setup proxy-retry

read -r P_STALE P_RST OUT IN ADM CTL CADM P_APP OUT2 IN2 ADM2 P_DEAD OUT3 ADM3 OUT4 IN4 ADM4 <<<"$(
	"$PY" - <<'EOF'
import socket
ss = [socket.socket() for _ in range(17)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
)"

# A server whose connections answer one request with keep-alive, then, on
# the next request, close (mode "fin") or reset (mode "rst") without an
# answer: what a server whose keep-alive timer fired at that instant does.
cat > "$tmp/stale.py" <<'EOF'
import socket, struct, sys, threading
port, mode = int(sys.argv[1]), sys.argv[2]
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", port))
ls.listen(64)
def serve(c):
    n = 0
    buf = b""
    try:
        while True:
            while b"\r\n\r\n" not in buf:
                d = c.recv(65536)
                if not d:
                    return
                buf += d
            head, buf = buf.split(b"\r\n\r\n", 1)
            n += 1
            if n == 2:
                if mode == "rst":
                    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 struct.pack("ii", 1, 0))
                return
            body = b"fresh\n"
            c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
    finally:
        c.close()
while True:
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
EOF
"$PY" "$tmp/stale.py" "$P_STALE" fin & pids+=($!)
"$PY" "$tmp/stale.py" "$P_RST" rst & pids+=($!)

"$MESHD_BIN" proxy --mode explicit --outbound-addr 127.0.0.1:$OUT \
	--inbound-addr 127.0.0.1:$IN --admin-addr 127.0.0.1:$ADM \
	> "$tmp/proxy.log" 2>&1 & pids+=($!)

for p in $P_STALE $P_RST $OUT $ADM; do e2e_wait_port "$p"; done

# status of a request through the outbound listener to <target>
req() {
	local target=$1
	shift
	curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: $target" "$@" \
		"http://127.0.0.1:$OUT/x"
}

for mode in fin rst; do
	[ $mode = fin ] && port=$P_STALE || port=$P_RST
	a=$(req 127.0.0.1:$port)
	b=$(req 127.0.0.1:$port)
	c=$(req 127.0.0.1:$port)
	check "stale keep-alive ($mode): GETs on a reused connection are sent again on a fresh one" \
		test "$a$b$c" = 200200200
	a=$(req 127.0.0.1:$port)
	b=$(req 127.0.0.1:$port -X POST --data-binary 'not idempotent')
	check "stale keep-alive ($mode): a POST is not sent twice (502)" \
		test "$a$b" = 200502
done

# ---- with the destination service ----------------------------------------
# Endpoints: "good" answers everything; "bad" answers 503 to /hello and to
# POST /echo (after reading the body). /delay/MS answers after MS ms.
cat > "$tmp/app.py" <<'EOF'
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
addr, port, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def answer(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith("/delay/"):
            time.sleep(int(self.path[7:]) / 1000.0)
            return self.answer(200, b"late\n")
        if self.path == "/hello" and mode == "bad":
            return self.answer(503, b"")
        self.answer(200, mode.encode() + b"\n")
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if mode == "bad":
            return self.answer(503, b"")
        self.answer(200, body)
ThreadingHTTPServer((addr, port), H).serve_forever()
EOF
"$PY" "$tmp/app.py" 127.0.0.2 $P_APP good > "$tmp/good.log" 2>&1 & pids+=($!)
"$PY" "$tmp/app.py" 127.0.0.3 $P_APP bad > "$tmp/bad.log" 2>&1 & pids+=($!)
cat > "$tmp/reg.yaml" <<EOF
services:
  - name: web
    namespace: t
    ports: [{port: 80, target_port: $P_APP}]
    selector: {app: web}
    routes:
      - {name: hello, path_exact: /hello, retryable: true}
      - {name: slow, path_prefix: /delay, timeout: 300ms}
      - {name: echo, path_exact: /echo, method: POST, retryable: true}
  - name: post
    namespace: t
    ports: [{port: 80, target_port: $P_APP}]
    selector: {app: web}
    routes:
      - {name: echo, path_exact: /echo, method: POST, retryable: true}
  - name: fo
    namespace: t
    ports: [{port: 80, target_port: $P_APP}]
    selector: {app: fo}
  - name: g
    namespace: t
    ports: [{port: 80, target_port: $P_APP}]
    selector: {who: good}
  - name: bd
    namespace: t
    ports: [{port: 80, target_port: $P_APP}]
    selector: {who: bad}
  - name: once
    namespace: t
    ports: [{port: 80, target_port: $P_APP}]
    selector: {app: web}
workloads:
  - {name: good, namespace: t, addresses: [127.0.0.2], labels: {app: web, who: good}, meshed: false}
  - {name: bad, namespace: t, addresses: [127.0.0.3], labels: {app: web, who: bad}, meshed: false}
  - {name: fo-good, namespace: t, addresses: [127.0.0.2], labels: {app: fo}, meshed: false}
  - {name: fo-refused, namespace: t, addresses: [127.0.0.5], labels: {app: fo}, meshed: false}
  - {name: fo-appgone, namespace: t, addresses: [127.0.0.6], labels: {app: fo}, meshed: false}
EOF
"$MESHD_BIN" controller --registry "$tmp/reg.yaml" \
	--destination-addr 127.0.0.1:$CTL --admin-addr 127.0.0.1:$CADM \
	> "$tmp/ctl.log" 2>&1 & pids+=($!)
"$MESHD_BIN" proxy --mode explicit --outbound-addr 127.0.0.1:$OUT2 \
	--inbound-addr 127.0.0.1:$IN2 --admin-addr 127.0.0.1:$ADM2 \
	--destination-addr 127.0.0.1:$CTL > "$tmp/proxy2.log" 2>&1 & pids+=($!)
# the "fo-appgone" endpoint: a meshd proxy (inbound) whose application is
# not listening: it answers 502 "meshd-proxy-error: connect failed"
"$MESHD_BIN" proxy --mode explicit --inbound-addr 127.0.0.6:$P_APP \
	--inbound-forward 127.0.0.1:$P_DEAD --outbound-addr 127.0.0.1:$OUT3 \
	--admin-addr 127.0.0.1:$ADM3 > "$tmp/proxy3.log" 2>&1 & pids+=($!)
e2e_wait_port "$CTL"; e2e_wait_port "$OUT2"; e2e_wait_port "$ADM2"; e2e_wait_port "$ADM3"
wait_http() {
	local i
	for i in $(seq 100); do
		curl -s -m 1 -o /dev/null "http://$1/" && return 0
		sleep 0.05
	done
	return 1
}
wait_http 127.0.0.2:$P_APP; wait_http 127.0.0.3:$P_APP

# status of a request for service <host> (default web.t:80)
sreq() {
	local host=$1 path=$2
	shift 2
	curl -s -m 5 -o /dev/null -w '%{http_code}' -H "Host: $host" "$@" \
		"http://127.0.0.1:$OUT2$path"
}
metric() {
	curl -s -m 5 "http://127.0.0.1:$ADM2/metrics" |
		awk -v m="$1" '$1 == m { print $2 }'
}

ok=0
for i in $(seq 40); do [ "$(sreq web.t:80 /hello)" = 200 ] && ok=$((ok + 1)); done
check "retryable route: 40/40 succeed although one endpoint fails every /hello ($ok/40)" \
	test $ok = 40
r1=$(metric outbound_http_retry_requests_total)
check "retryable route: retries were counted ($r1)" test "${r1:-0}" -gt 0

fail=0
for i in $(seq 20); do [ "$(sreq once.t:80 /hello)" = 200 ] || fail=$((fail + 1)); done
r2=$(metric outbound_http_retry_requests_total)
check "no retryable route: failures reach the client ($fail/20 failed), no retry ($r1 -> $r2)" \
	test $fail -gt 0 -a "$r1" = "$r2"

ok=0
for i in $(seq 30); do [ "$(sreq fo.t:80 /ok -X POST -d x=1)" = 200 ] && ok=$((ok + 1)); done
f=$(metric outbound_balancer_failovers_total)
check "failover: a refused connection and an endpoint whose app is gone cost nothing, even for POSTs on a route that is not retryable ($ok/30; failovers $f)" \
	test $ok = 30 -a "${f:-0}" -gt 0
out=$(curl -s -m 5 "http://127.0.0.1:$ADM2/metrics" | grep '^response_total{[^}]*authority="fo.t:80"')
check "per-endpoint series count attempts: failures on the refused and app-gone endpoints, successes only on the good one" \
	sh -c '! printf "%s\n" "$1" | grep -E "target_addr=\"127\.0\.0\.[56]:[0-9]+\".*classification=\"success\"" &&
		printf "%s\n" "$1" | grep -Eq "target_addr=\"127\.0\.0\.[56]:[0-9]+\".*classification=\"failure\"" &&
		printf "%s\n" "$1" | grep -Eq "target_addr=\"127\.0\.0\.2:[0-9]+\".*classification=\"success\""' _ "$out"

head -c 40000 /dev/urandom | base64 -w0 > "$tmp/body"
same=0
for i in $(seq 20); do
	curl -s -m 5 -H "Host: post.t:80" --data-binary @"$tmp/body" \
		"http://127.0.0.1:$OUT2/echo" | cmp -s - "$tmp/body" && same=$((same + 1))
done
r3=$(metric outbound_http_retry_requests_total)
check "POST bodies (53 KB) are replayed intact on retry ($same/20; retries $r2 -> $r3)" \
	test $same = 20 -a "$r3" -gt "$r2"
head -c 80000 /dev/urandom | base64 -w0 > "$tmp/big"
fail=0
for i in $(seq 6); do
	curl -s -m 5 -H "Host: web.t:80" --data-binary @"$tmp/big" \
		"http://127.0.0.1:$OUT2/echo" | cmp -s - "$tmp/big" || fail=$((fail + 1))
done
r4=$(metric outbound_http_retry_requests_total)
check "a body over 64 KiB is never retried ($fail/6 failed; retries $r3 -> $r4)" \
	test "$r4" = "$r3"

# curl's own clock (time_total), not the shell's: a busy machine delays
# process start-up, not the request
timed() {
	curl -s -m 5 -o /dev/null -w '%{http_code} %{time_total}' \
		-H "Host: web.t:80" "$@"
}
read -r code secs <<<"$(timed "http://127.0.0.1:$OUT2/delay/2000")"
ms=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')
check "route timeout: 504 after ~300 ms (got $code in $ms ms)" \
	test "$code" = 504 -a $ms -ge 290 -a $ms -lt 1500
read -r code secs <<<"$(timed -H 'meshd-timeout: 100ms' "http://127.0.0.1:$OUT2/delay/2000")"
ms=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')
check "meshd-timeout: 100ms shortens it (got $code in $ms ms)" \
	test "$code" = 504 -a $ms -ge 95 -a $ms -lt 290
code=$(sreq web.t:80 /delay/600 -H 'meshd-timeout: 5s')
check "meshd-timeout cannot lengthen the route's 300 ms ($code)" test "$code" = 504
code=$(sreq web.t:80 /delay/50)
check "an answer within the route timeout passes ($code)" test "$code" = 200
t=$(metric outbound_http_route_timeouts_total)
check "route timeouts counted ($t)" test "${t:-0}" -ge 3
out=$(curl -s -m 5 "http://127.0.0.1:$ADM2/metrics")
check_out "dst_* labels on the balanced requests' series" \
	'response_total\{[^}]*dst_namespace="t",dst_service="web"[^}]*dst_pod="good"' \
	echo "$out"

# ---- two names resolved at once ----------------------------------------------
# Regression: a request parked while its name resolved kept a pointer to its
# authority in the shared read buffer, so another connection's request
# could overwrite it and the request went to the other service.
bad=0
for round in 1 2 3 4 5; do
	"$MESHD_BIN" proxy --mode explicit --outbound-addr 127.0.0.1:$OUT4 \
		--inbound-addr 127.0.0.1:$IN4 --admin-addr 127.0.0.1:$ADM4 \
		--destination-addr 127.0.0.1:$CTL > "$tmp/proxy4.log" 2>&1 &
	p4=$!
	pids+=($p4)
	e2e_wait_port "$OUT4"
	for i in 1 2 3 4; do
		curl -s -m 5 -H 'Host: g.t:80' "http://127.0.0.1:$OUT4/ok" > "$tmp/g$i" &
		curl -s -m 5 -H 'Host: bd.t:80' "http://127.0.0.1:$OUT4/ok" > "$tmp/bd$i" &
	done
	wait_jobs=$(jobs -p | grep -v -x "$p4" || true)
	for j in $wait_jobs; do
		case " ${pids[*]} " in *" $j "*) ;; *) wait "$j" 2>/dev/null ;; esac
	done
	for i in 1 2 3 4; do
		[ "$(cat "$tmp/g$i")" = good ] || bad=$((bad + 1))
		[ "$(cat "$tmp/bd$i")" = bad ] || bad=$((bad + 1))
	done
	kill "$p4"
	wait "$p4" 2>/dev/null
done
check "first requests to two names resolved at once each reach their own service (5 rounds x 8; $bad misrouted or failed)" \
	test $bad = 0

# ---- the queue in front of a service's balancer ----------------------------
# "empty.t" selects no workload: a request waits up to 3 s for an endpoint
# (Linkerd's fail-fast time), then gets 503; an endpoint that appears
# meanwhile serves it.
cp "$tmp/reg.yaml" "$tmp/reg.base"
{ sed '/^workloads:/,$d' "$tmp/reg.base"
  printf '  - name: empty\n    namespace: t\n    ports: [{port: 80, target_port: %s}]\n    selector: {app: nobody}\n' "$P_APP"
  sed -n '/^workloads:/,$p' "$tmp/reg.base"; } > "$tmp/reg.new" && mv "$tmp/reg.new" "$tmp/reg.yaml"
sleep 0.6
read -r code secs <<<"$(curl -s -m 8 -o /dev/null -w '%{http_code} %{time_total}' \
	-H 'Host: empty.t:80' "http://127.0.0.1:$OUT2/ok")"
ms=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')
check "no endpoint: the request waits ~3 s in the queue, then 503 (got $code in $ms ms)" \
	test "$code" = 503 -a $ms -ge 2900 -a $ms -lt 4500
curl -s -m 8 -o "$tmp/late.out" -w '%{http_code} %{time_total}' -H 'Host: empty.t:80' \
	"http://127.0.0.1:$OUT2/ok" > "$tmp/late.code" &
late=$!
sleep 0.8
sed 's/selector: {app: nobody}/selector: {app: web}/' "$tmp/reg.yaml" > "$tmp/reg.new" &&
	mv "$tmp/reg.new" "$tmp/reg.yaml"
wait $late
read -r code secs < "$tmp/late.code"
ms=$(awk -v s="$secs" 'BEGIN { printf "%d", s * 1000 }')
check "an endpoint that appears while a request waits serves it (got $code in $ms ms)" \
	test "$code" = 200 -a $ms -ge 700 -a $ms -lt 2900
