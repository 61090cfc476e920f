#!/usr/bin/env bash
# HTTP/2 and gRPC through discovery, on loopback (127.0.0.x, no
# namespaces): meshd controller (file registry) + meshd proxy in explicit
# mode with --destination-addr + upstreams (abc-app b roles, and
# mesh_h2/h2srv.py for failing, echoing, refusing and GOAWAY servers).
# Real clients: curl --http2-prior-knowledge (the service name in Host),
# and Python grpcio (stubs generated now from examples/app/abc.proto).
#
# Checked: the first request to a fresh name succeeds (the stream waits
# for the resolution, also with a request body larger than the stream
# window); requests spread over a service's endpoints; a route timeout
# answers 504 "route timeout" (gRPC: DEADLINE_EXCEEDED) in about the
# route's time and is counted; meshd-timeout shortens it, never lengthens
# it, and a malformed one is ignored; a retryable route over an endpoint
# set with an always-failing endpoint succeeds >= 99 % (HTTP and gRPC)
# and counts retries; a non-retryable route is not retried; a POST body
# <= 64 KiB is replayed intact, a larger one is not retried; streams an
# upstream refuses (RST_STREAM REFUSED_STREAM, GOAWAY) are retried on
# any route. Every process started here is ended by the EXIT trap.
. "$(dirname "$0")/lib.sh"

top=${MESHD_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
PY=/usr/bin/python3
HERE="$top/test/e2e/mesh_h2"
ABC=${ABC_APP:-$top/build/examples/abc-app}
M=$MESHD_BIN
unset MESHD_ROLES MESHD_REGISTRY MESHD_REGISTRY_INTERVAL MESHD_DESTINATION_ADDR \
	MESHD_ADMIN_ADDR MESHD_OUTBOUND_ADDR MESHD_INBOUND_ADDR MESHD_MODE \
	MESHD_LOG_LEVEL MESHD_LOG_FORMAT MESHD_RESPONSE_TIMEOUT

for tool in curl nghttp; do
	if ! command -v "$tool" >/dev/null; then
		e2e_report 1 "tools present" "missing $tool"
		exit 0
	fi
done
if [ ! -x "$ABC" ]; then
	e2e_report 1 "abc-app built" "missing $ABC"
	exit 0
fi
if ! "$PY" -c 'import h2, grpc, grpc_tools' 2>/dev/null; then
	echo "ok 1 - mesh_h2 # SKIP $PY lacks python3-h2/python3-grpcio/python3-grpc-tools"
	exit 0
fi

e2e_setup mesh-h2

# free ports (the same port is then used on several 127.0.0.x addresses)
read -r DP CA OUT INB PA PA1 PH <<<"$(
	"$PY" - <<'EOF'
import socket
ss = [socket.socket() for _ in range(7)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))
EOF
)"

metric() {  # metric NAME: the proxy's value (summed over series), or 0
	curl -s --max-time 5 "http://127.0.0.1:$PADM/metrics" |
		awk -v k="$1" '$1 == k || index($1, k "{") == 1 { s += $2; n++ }
			END { print n ? s : 0 }'
}
# h2 METHOD AUTHORITY PATH [curl args...]: prints "CODE SECONDS"
h2() {
	local m=$1 a=$2 p=$3
	shift 3
	curl -s -o "$tmp/body.out" -D "$tmp/head.out" --max-time 10 \
		--http2-prior-knowledge -X "$m" -H "Host: $a" \
		-w '%{http_code} %{time_total}\n' "$@" "http://127.0.0.1:$OUT$p"
}
PADM=0

# --- registry, controller ----------------------------------------------------
cat >"$tmp/reg.yaml" <<EOF
services:
  - name: web
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: web}
  - name: slow
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: slow}
    routes:
      - {name: hello, method: GET, path_exact: /hello, timeout: 300ms}
      - {name: say, method: POST, path_exact: /abc.Echo/Say, timeout: 300ms}
  - name: flaky-r
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {flaky: "yes"}
    routes:
      - {name: hello, method: GET, path_exact: /hello, retryable: true}
      - {name: say, method: POST, path_exact: /abc.Echo/Say, retryable: true}
  - name: flaky-g
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {flaky: "yes"}
    routes:
      - {name: say, method: POST, path_exact: /abc.Echo/Say, retryable: true}
  - name: flaky-n
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {flaky: "yes"}
    routes:
      - {name: hello, method: GET, path_exact: /hello}
  - name: echo
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {echo: "yes"}
    routes:
      - {name: echo, method: POST, path_exact: /echo, retryable: true}
  - name: echo-fail
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: fail-only}
    retry_budget: {ratio: 0.2, min_per_second: 100, ttl: 10s}
    routes:
      - {name: echo, method: POST, path_exact: /echo, retryable: true}
  - name: echo2
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: good-echo}
  - name: echo3
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: good-echo}
  - name: fresh-a
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: web}
  - name: fresh-b
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: web}
  - name: refuse
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: refuse}
  - name: goaway
    namespace: demo
    ports: [{port: 8080, target_port: $PA}]
    selector: {app: goaway}
workloads:
  - {name: web-a, namespace: demo, addresses: [127.0.0.2], labels: {app: web}, meshed: false}
  - {name: web-b, namespace: demo, addresses: [127.0.0.3], labels: {app: web}, meshed: false}
  - {name: slow-1, namespace: demo, addresses: [127.0.0.4], labels: {app: slow}, meshed: false}
  - {name: bad-1, namespace: demo, addresses: [127.0.0.5], labels: {flaky: "yes"}, meshed: false}
  - {name: good-1, namespace: demo, addresses: [127.0.0.6], labels: {flaky: "yes"}, meshed: false}
  - {name: fail-1, namespace: demo, addresses: [127.0.0.7], labels: {echo: "yes"}, meshed: false}
  - {name: echo-1, namespace: demo, addresses: [127.0.0.8], labels: {echo: "yes", app: good-echo}, meshed: false}
  - {name: fail-2, namespace: demo, addresses: [127.0.0.9], labels: {app: fail-only}, meshed: false}
  - {name: refuse-1, namespace: demo, addresses: [127.0.0.10], labels: {app: refuse}, meshed: false}
  - {name: goaway-1, namespace: demo, addresses: [127.0.0.11], labels: {app: goaway}, meshed: false}
EOF

"$M" controller --registry "$tmp/reg.yaml" --destination-addr "127.0.0.1:$DP" \
	--admin-addr "127.0.0.1:$CA" --log-level warn >"$tmp/controller.log" 2>&1 &
pids+=($!)

# --- upstreams -----------------------------------------------------------------
abc() {  # abc IP NAME [flags...]
	local ip=$1 name=$2
	shift 2
	"$ABC" b --listen "$ip:$PA1" --grpc-listen "$ip:$PA" --name "$name" \
		--rate 0 --report 0 "$@" >"$tmp/abc-$name.log" 2>&1 &
	pids+=($!)
}
pysrv() {  # pysrv IP MODE NAME
	"$PY" "$HERE/h2srv.py" --listen "$1:$PA" --mode "$2" --name "$3" \
		--log "$tmp/srv-$3.log" >"$tmp/py-$3.log" 2>&1 &
	pids+=($!)
	: >"$tmp/srv-$3.log"
}
abc 127.0.0.2 web-a
abc 127.0.0.3 web-b
abc 127.0.0.4 slow --latency 1000
abc 127.0.0.5 bad --fail-rate 1
abc 127.0.0.6 good
pysrv 127.0.0.7 fail fail-1
abc 127.0.0.8 echo-1
pysrv 127.0.0.9 fail fail-2
pysrv 127.0.0.10 refuse refuse-1
pysrv 127.0.0.11 goaway goaway-1

# --- proxy ---------------------------------------------------------------------
PADM=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$M" proxy --mode explicit --outbound-addr "127.0.0.1:$OUT" \
	--inbound-addr "127.0.0.1:$INB" --admin-addr "127.0.0.1:$PADM" \
	--destination-addr "127.0.0.1:$DP" --log-level warn >"$tmp/proxy.log" 2>&1 &
pids+=($!)

up=0
e2e_wait_port "$DP" && e2e_wait_port "$OUT" && e2e_wait_port "$PADM" &&
	for ip in 2 3 4 5 6 7 8 9 10 11; do e2e_wait_port "$PA" "127.0.0.$ip" || exit 1; done && up=1
[ $up = 1 ]
e2e_report $? "controller, proxy and 10 upstreams up" \
	"$(tail -n 5 "$tmp"/*.log)"

check "stubs generate from examples/app/abc.proto" \
	timeout 30 "$PY" -m grpc_tools.protoc -I"$top/examples/app" \
	--python_out="$tmp" --grpc_python_out="$tmp" "$top/examples/app/abc.proto"
say() { timeout 120 "$PY" "$HERE/grpc_say.py" "$tmp" "127.0.0.1:$OUT" "$@"; }

# --- pending resolution -----------------------------------------------------------
r=$(h2 GET web.demo:8080 /hello)
[ "${r%% *}" = 200 ] && grep -q '^hello from web-' "$tmp/body.out"
e2e_report $? "first request to a fresh name waits for its resolution: 200" "$r $(cat "$tmp/body.out")"

head -c 60000 /dev/urandom >"$tmp/b60k"
r=$(h2 POST echo2.demo:8080 /echo --data-binary @"$tmp/b60k")
[ "${r%% *}" = 200 ] && cmp -s "$tmp/body.out" "$tmp/b60k"
e2e_report $? "first POST (60 KB body) to a fresh name: echoed intact" "$r"

head -c 300000 /dev/urandom >"$tmp/b300k"
r=$(h2 POST echo2.demo:8081 /echo --data-binary @"$tmp/b300k")
# port 8081 is not the service's: a fresh name the controller does not know
[ "${r%% *}" = 503 ] && grep -qi '^meshd-proxy-error:' "$tmp/head.out"
e2e_report $? "a name the controller does not know: 503 with meshd-proxy-error (explicit mode)" "$r"

r=$(h2 POST echo3.demo:8080 /echo --data-binary @"$tmp/b300k")
[ "${r%% *}" = 200 ] && cmp -s "$tmp/body.out" "$tmp/b300k"
e2e_report $? "first POST (300 KB body, more than a stream window) to a fresh name: echoed intact" "$r"

out=$(timeout 20 "$PY" "$HERE/h2cli_reset.py" 127.0.0.1 "$OUT" fresh-a.demo:8080 \
	fresh-b.demo:8080 web.demo:8080 2>&1)
sleep 0.5
[ "$out" = "ok 200" ] && kill -0 "${pids[-1]}" 2>/dev/null
e2e_report $? "streams reset, or whose connection closed, while their name resolves: the lookups are cancelled, the proxy goes on" "$out"

out=$(say web.demo:8080 1)
case $out in ok=1\ fail=0*) rc=0 ;; *) rc=1 ;; esac
e2e_report $rc "gRPC: first call to a fresh name (web) succeeds" "$out"

# --- balancing ---------------------------------------------------------------------
# 40 concurrent streams on one connection (P2C weighs in-flight requests)
timeout 20 nghttp -m 40 -H ":authority: web.demo:8080" \
	"http://127.0.0.1:$OUT/hello" >"$tmp/spread" 2>&1
na=$(grep -c 'hello from web-a' "$tmp/spread")
nb=$(grep -c 'hello from web-b' "$tmp/spread")
[ "$na" -ge 1 ] && [ "$nb" -ge 1 ] && [ $((na + nb)) = 40 ]
e2e_report $? "40 concurrent streams (nghttp -m 40) spread over both endpoints (web-a $na, web-b $nb)" "$(head -c 300 "$tmp/spread")"
out=$(say web.demo:8080 40)
case $out in ok=40\ *) rc=0 ;; *) rc=1 ;; esac
e2e_report $rc "gRPC: 40 calls on one connection succeed" "$out"

# --- route timeouts ----------------------------------------------------------------
t0=$(metric outbound_http_route_timeouts_total)
r=$(h2 GET slow.demo:8080 /hello)
code=${r%% *}; secs=${r#* }
[ "$code" = 504 ] && grep -qi '^meshd-proxy-error: route timeout' "$tmp/head.out" &&
	awk -v s="$secs" 'BEGIN { exit !(s >= 0.25 && s < 0.8) }'
e2e_report $? "route timeout 300ms (upstream takes 1 s): 504 route timeout in ${secs}s" "$r $(cat "$tmp/head.out")"
t1=$(metric outbound_http_route_timeouts_total)
[ "$t1" -gt "$t0" ]
e2e_report $? "outbound_http_route_timeouts_total counted it ($t0 -> $t1)"

r=$(h2 GET slow.demo:8080 /hello -H 'meshd-timeout: 100ms')
code=${r%% *}; secs=${r#* }
[ "$code" = 504 ] && awk -v s="$secs" 'BEGIN { exit !(s >= 0.08 && s < 0.25) }'
e2e_report $? "meshd-timeout: 100ms shortens it: 504 in ${secs}s" "$r"

r=$(h2 GET slow.demo:8080 /hello -H 'meshd-timeout: 5s')
code=${r%% *}; secs=${r#* }
[ "$code" = 504 ] && awk -v s="$secs" 'BEGIN { exit !(s >= 0.25 && s < 0.8) }'
e2e_report $? "meshd-timeout: 5s does not lengthen it: 504 in ${secs}s" "$r"

r=$(h2 GET slow.demo:8080 /hello -H 'meshd-timeout: 100')
code=${r%% *}; secs=${r#* }
[ "$code" = 504 ] && awk -v s="$secs" 'BEGIN { exit !(s >= 0.25 && s < 0.8) }'
e2e_report $? "a malformed meshd-timeout (100) is ignored: 504 in ${secs}s" "$r"

r=$(h2 GET slow.demo:8080 /ok)
[ "${r%% *}" = 200 ]
e2e_report $? "a path outside the timed route is not cut: 200" "$r"

# --response-timeout bounds HTTP/2 streams too (no profile needed)
read -r OUTR INBR ADMR <<<"$("$PY" -c 'import socket
ss=[socket.socket() for _ in range(3)]
[s.bind(("127.0.0.1",0)) for s in ss]
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
"$M" proxy --mode explicit --outbound-addr "127.0.0.1:$OUTR" \
	--inbound-addr "127.0.0.1:$INBR" --admin-addr "127.0.0.1:$ADMR" \
	--response-timeout 400ms --log-level warn >"$tmp/proxy-rt.log" 2>&1 &
pids+=($!)
e2e_wait_port "$OUTR"
r=$(curl -s -o /dev/null -D "$tmp/head-rt.out" --max-time 10 --http2-prior-knowledge \
	-H "Host: 127.0.0.4:$PA" -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$OUTR/hello")
code=${r%% *}; secs=${r#* }
[ "$code" = 504 ] && grep -qi '^meshd-proxy-error: response timed out' "$tmp/head-rt.out" &&
	awk -v s="$secs" 'BEGIN { exit !(s >= 0.35 && s < 0.9) }'
e2e_report $? "--response-timeout 400ms cuts an HTTP/2 stream whose upstream takes 1 s: 504 in ${secs}s" "$r $(cat "$tmp/head-rt.out")"
r=$(curl -s -o /dev/null --max-time 10 --http2-prior-knowledge \
	-H "Host: 127.0.0.2:$PA" -w '%{http_code}' "http://127.0.0.1:$OUTR/ok")
[ "$r" = 200 ]
e2e_report $? "--response-timeout leaves a fast HTTP/2 upstream alone: $r"

out=$(say slow.demo:8080 3)
case $out in "ok=0 fail=3 codes=DEADLINE_EXCEEDED:3 "*) rc=0 ;; *) rc=1 ;; esac
ms=${out##*ms=}
[ $rc = 0 ] && [ "$ms" -lt 800 ] || rc=1
e2e_report $rc "gRPC: route timeout gives DEADLINE_EXCEEDED in about 300 ms" "$out"
out=$(say slow.demo:8080 1 meshd-timeout=100ms)
ms=${out##*ms=}
case $out in "ok=0 fail=1 codes=DEADLINE_EXCEEDED:1 "*) [ "$ms" -lt 250 ]; rc=$? ;; *) rc=1 ;; esac
e2e_report $rc "gRPC: meshd-timeout metadata 100ms shortens it" "$out"

# --- retries: retryable route ---------------------------------------------------------
r0=$(metric outbound_http_retry_requests_total)
ok=0
for i in $(seq 200); do
	r=$(h2 GET flaky-r.demo:8080 /hello)
	[ "${r%% *}" = 200 ] && ok=$((ok + 1))
done
r1=$(metric outbound_http_retry_requests_total)
[ $ok -ge 198 ]
e2e_report $? "retryable route, one endpoint always fails: $ok of 200 succeed"
[ "$r1" -gt "$r0" ]
e2e_report $? "outbound_http_retry_requests_total grew ($r0 -> $r1)"

r0=$r1
out=$(say flaky-g.demo:8080 200)
ok=${out#ok=}; ok=${ok%% *}
r1=$(metric outbound_http_retry_requests_total)
[ "$ok" -ge 198 ] && [ "$r1" -gt "$r0" ]
e2e_report $? "gRPC retryable route (UNAVAILABLE from one endpoint): $ok of 200 succeed, retries $r0 -> $r1" "$out"

# --- no retries on a non-retryable route ------------------------------------------------
r0=$(metric outbound_http_retry_requests_total)
fails=0
for i in $(seq 30); do
	r=$(h2 GET flaky-n.demo:8080 /hello)
	[ "${r%% *}" = 503 ] && grep -q 'injected failure' "$tmp/body.out" && fails=$((fails + 1))
done
r1=$(metric outbound_http_retry_requests_total)
[ $fails -ge 1 ]
e2e_report $? "non-retryable route: the endpoint's failures reach the client ($fails of 30)"
[ "$r1" = "$r0" ]
e2e_report $? "non-retryable route: no retry counted ($r0 -> $r1)"

# --- body replay ----------------------------------------------------------------------
head -c 65536 /dev/urandom >"$tmp/b64k"
r0=$(metric outbound_http_retry_requests_total)
good=0 bad=
for i in $(seq 20); do
	r=$(h2 POST echo.demo:8080 /echo --data-binary @"$tmp/b64k")
	if [ "${r%% *}" = 200 ] && cmp -s "$tmp/body.out" "$tmp/b64k"; then
		good=$((good + 1))
	else
		bad="$bad; #$i: $r $(head -c 100 "$tmp/body.out") $(tr -d '\r' <"$tmp/head.out" | tr '\n' ' ')"
	fi
done
r1=$(metric outbound_http_retry_requests_total)
nfail=$(grep -c ' 65536 503$' "$tmp/srv-fail-1.log")
[ $good = 20 ] && [ "$r1" -gt "$r0" ] && [ "$nfail" -ge 1 ]
e2e_report $? "POST 64 KiB over a failing endpoint: 20 of 20 echoed intact ($good), retries $r0 -> $r1, the failing one saw $nfail whole bodies" "$bad"

head -c 70000 /dev/urandom >"$tmp/b70k"
r0=$(metric outbound_http_retry_requests_total)
r=$(h2 POST echo-fail.demo:8080 /echo --data-binary @"$tmp/b70k")
r1=$(metric outbound_http_retry_requests_total)
n=$(grep -c ' 70000 503$' "$tmp/srv-fail-2.log")
[ "${r%% *}" = 503 ] && grep -q 'failed by fail-2' "$tmp/body.out" && [ "$r1" = "$r0" ] && [ "$n" = 1 ]
e2e_report $? "POST 70000 bytes (> 64 KiB) on a retryable route: not retried (503 from the endpoint, sent once, retries $r0 -> $r1)" "$r $(cat "$tmp/body.out")"
r0=$r1
r=$(h2 POST echo-fail.demo:8080 /echo --data-binary 'small')
r1=$(metric outbound_http_retry_requests_total)
n=$(grep -c ' 5 503$' "$tmp/srv-fail-2.log")
[ "${r%% *}" = 503 ] && [ "$n" = 3 ] && [ "$r1" = $((r0 + 2)) ]
e2e_report $? "the same with a small body: 3 attempts in all, then the failure (sent $n times, retries $r0 -> $r1)" "$r"

# --- refused streams: retried on any route ---------------------------------------------
ok=0
for i in $(seq 10); do
	r=$(h2 GET refuse.demo:8080 /x)
	[ "${r%% *}" = 200 ] && ok=$((ok + 1))
done
nref=$(grep -c refused "$tmp/srv-refuse-1.log")
[ $ok = 10 ] && [ "$nref" -ge 5 ]
e2e_report $? "REFUSED_STREAM from the upstream: retried, 10 of 10 succeed ($ok; $nref refusals)"
ok=0
for i in $(seq 6); do
	r=$(h2 POST goaway.demo:8080 /echo --data-binary 'hello')
	[ "${r%% *}" = 200 ] && [ "$(cat "$tmp/body.out")" = hello ] && ok=$((ok + 1))
done
ngo=$(grep -c goaway "$tmp/srv-goaway-1.log")
[ $ok = 6 ] && [ "$ngo" -ge 1 ]
e2e_report $? "GOAWAY(last_stream_id 0) from the upstream: the stream is retried on a new connection, 6 of 6 succeed ($ok; $ngo GOAWAYs)"

# --- metrics of balanced HTTP/2 requests carry the destination's labels ------------------
curl -s --max-time 5 "http://127.0.0.1:$PADM/metrics" |
	grep -Eq '^response_total\{direction="outbound",authority="[a-z0-9.-]+\.demo:8080"[^}]*dst_namespace="demo"[^}]*dst_pod="'
e2e_report $? "HTTP/2 response_total series of balanced requests carry dst_namespace and dst_pod"

# --- the proxy is fine --------------------------------------------------------------------
kill -0 "${pids[-1]}" 2>/dev/null
e2e_report $? "proxy still running" "$(tail -n 20 "$tmp/proxy.log")"
! grep -Eq 'ERROR|AddressSanitizer|runtime error' "$tmp/proxy.log"
e2e_report $? "proxy log has no errors or sanitizer reports" "$(grep -E 'ERROR|AddressSanitizer|runtime error' "$tmp/proxy.log" | head)"
