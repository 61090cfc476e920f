#!/usr/bin/env bash
# abc-app, the sample application (examples/app): services A, B and C on
# loopback, their test-origin endpoints over HTTP/1.1 and h2c, gRPC both ways
# with a stock client and server (Python grpcio), and a clean SIGTERM.
# Needs build/examples/abc-app (make -C examples), curl; nghttp2-client and
# python3-grpcio + python3-grpc-tools for the h2 and gRPC parts (skipped
# without them). ABC_APP overrides the binary (e.g. a sanitizer build:
# make -C examples CC=gcc DEPS=../build/deps/host SAN=1 OUT=../build/examples-san).
. "$(dirname "$0")/lib.sh"
top=${MESHD_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
APP=${ABC_APP:-$top/build/examples/abc-app}
PY=/usr/bin/python3

skip() { e2e_n=$((e2e_n + 1)); echo "ok $e2e_n - $1 # SKIP $2"; }

if [ ! -x "$APP" ]; then
	e2e_report 1 "abc-app is built" "missing $APP (make -C examples)"
	exit 0
fi

tmp=$(mktemp -d /tmp/e2e-app.XXXXXX)
pids=()

# Stops what this test started, and nothing else.
cleanup() {
	local p i
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

# start NAME CMD...: runs CMD in the background, output in $tmp/NAME.log.
start() {
	local name=$1
	shift
	"$@" > "$tmp/$name.log" 2>&1 &
	pids+=($!)
	eval "pid_$name=$!"
}

# wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds.
wait_for() {
	local n=$(($1 * 10))
	shift
	while [ $n -gt 0 ]; do
		"$@" > /dev/null 2>&1 && return 0
		sleep 0.1
		n=$((n - 1))
	done
	return 1
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A free block of ten ports, below the ephemeral range (so that no outgoing
# connection can be holding one), picked from our PID: blocks are aligned,
# so runs started side by side (consecutive PIDs) get disjoint blocks.
eph=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null)
[ "${eph:-0}" -gt 11000 ] 2>/dev/null || eph=32768
base=
for try in $(seq 0 30); do
	b=$((10000 + ($$ * 13 + try * 7) % ((eph - 10020) / 10) * 10))
	ok=1
	for p in $(seq "$b" $((b + 9))); do port_free "$p" || { ok=0; break; }; done
	[ $ok = 1 ] && { base=$b; break; }
done
if [ -z "$base" ]; then
	e2e_report 1 "free loopback ports" "no ten free ports found"
	exit 0
fi
PA=$base PB=$((base + 1)) GB=$((base + 2)) PC=$((base + 3)) GC=$((base + 4))
PB2=$((base + 5)) GB2=$((base + 6)) GPY=$((base + 7))
L=127.0.0.1
CURL="curl -s -m 10"

have_grpc=0
if timeout 20 $PY -c 'import grpc, grpc_tools' 2>/dev/null &&
   timeout 20 $PY -m grpc_tools.protoc -I"$top/examples/app" --python_out="$tmp" \
	--grpc_python_out="$tmp" "$top/examples/app/abc.proto" 2>/dev/null; then
	have_grpc=1
fi

start b "$APP" b --listen $L:$PB --grpc-listen $L:$GB --peer http://$L:$GC --report 1
start c "$APP" c --listen $L:$PC --grpc-listen $L:$GC --peer http://$L:$GB --report 1
start a "$APP" a --listen $L:$PA --b http://$L:$PB --c http://$L:$PC --report 1

# A stock gRPC server for abc-app's client: b2 calls it. b2 also fails every
# /hello and Say (--fail-rate 1).
if [ $have_grpc = 1 ]; then
	cat > "$tmp/pyserver.py" <<'EOF'
import sys, time, grpc, abc_pb2, abc_pb2_grpc
from concurrent import futures
class Echo(abc_pb2_grpc.EchoServicer):
    say = count = 0
    def Say(self, req, ctx):
        Echo.say += 1
        return abc_pb2.SayReply(text=req.text, seq=req.seq, served_by="python")
    def Count(self, req, ctx):
        Echo.count += 1
        for i in range(1, req.count + 1):
            yield abc_pb2.CountReply(n=i, served_by="python")
srv = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
abc_pb2_grpc.add_EchoServicer_to_server(Echo(), srv)
srv.add_insecure_port(sys.argv[1])
srv.start()
deadline = time.time() + 50
while time.time() < deadline:
    with open(sys.argv[2], "w") as f:
        f.write("say %d count %d\n" % (Echo.say, Echo.count))
    time.sleep(0.2)
EOF
	(cd "$tmp" && exec $PY pyserver.py $L:$GPY "$tmp/pyserver.counts") > "$tmp/pyserver.log" 2>&1 &
	pids+=($!)
fi
start b2 "$APP" b --name b2 --listen $L:$PB2 --grpc-listen $L:$GB2 --peer http://$L:$GPY \
	--rate 20 --fail-rate 1 --report 1

# up PORT NAME: waits for /healthz; shows NAME's log when it does not come.
up() { wait_for 5 $CURL -f "http://$L:$1/healthz" || { cat "$tmp/$2.log"; return 1; }; }
check "b answers /healthz" up $PB b
check "c answers /healthz" up $PC c
check "a answers /healthz" up $PA a
check "b2 answers /healthz" up $PB2 b2

# --- HTTP/1.1 endpoints
check_out "b: GET /hello" '^hello from b$' $CURL http://$L:$PB/hello
check_out "a: GET / combines B's and C's answers" \
	'"b":\{"status":200,"body":"hello from b"\},"c":\{"status":200,"body":"hello from c"\}' \
	$CURL http://$L:$PA/
check_out "GET /status/503 answers 503" '^503$' \
	$CURL -o /dev/null -w '%{http_code}' http://$L:$PB/status/503
check_out "GET /status/201 answers 201" '^201$' \
	$CURL -o /dev/null -w '%{http_code}' http://$L:$PC/status/201
check_out "GET /ok is exactly \"ok\\n\"" '^200 3 6f6b0a$' \
	bash -c "$CURL -o $tmp/ok -w '%{http_code} %{size_download} ' http://$L:$PB/ok && od -An -tx1 $tmp/ok | tr -d ' \n'"
check_out "GET /bytes/1000000: 1000000 bytes" '^1000000$' \
	$CURL -o /dev/null -w '%{size_download}' http://$L:$PB/bytes/1000000
check_out "GET /bytes/1000000?chunked=1: 1000000 bytes, chunked" '^1000000 chunked$' \
	bash -c "$CURL -D $tmp/hdr -o /dev/null -w '%{size_download}' 'http://$L:$PB/bytes/1000000?chunked=1' &&
		grep -qi '^transfer-encoding: chunked' $tmp/hdr && echo ' chunked'"
check_out "/bytes content is the 64-byte pattern" '^abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\.$' \
	bash -c "$CURL http://$L:$PB/bytes/130 | head -n 2 | tail -n 1"
head -c 5000000 /dev/urandom > "$tmp/5m"
check "POST /echo: 5 MB round trip (content-length)" \
	bash -c "$CURL --data-binary @$tmp/5m http://$L:$PB/echo | cmp - $tmp/5m"
check "POST /echo: 5 MB round trip (chunked)" \
	bash -c "$CURL -H 'Transfer-Encoding: chunked' --data-binary @$tmp/5m http://$L:$PC/echo | cmp - $tmp/5m"
check_out "GET /delay/100 takes 100 ms or more, not much more" '^0\.(1[0-9]|[2-9])' \
	$CURL -o /dev/null -w '%{time_total}' http://$L:$PB/delay/100
check_out "GET /nope: 404" '^404$' $CURL -o /dev/null -w '%{http_code}' http://$L:$PB/nope

# raw bytes: pipelining and malformed input
raw() {
	# raw PORT BYTES: sends BYTES, prints what comes back until the server closes
	exec 3<>"/dev/tcp/$L/$1" || return 1
	printf "$2" >&3
	timeout 3 cat <&3
	exec 3<&-
}
check_out "pipelined requests: three answers in order" \
	'^HTTP/1.1 200 OK.*ok HTTP/1.1 404 Not Found.*not found HTTP/1.1 200 OK.*hello from b *$' \
	bash -c "$(declare -f raw); L=$L; raw $PB 'GET /ok HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\nGET /hello HTTP/1.1\r\nConnection: close\r\n\r\n' | tr '\r\n' '  ' | tr -s ' '"
check_out "malformed request: 400 and close" '^HTTP/1.1 400 Bad Request' \
	bash -c "$(declare -f raw); L=$L; raw $PB 'GET / HTTP/1.1\r\nBad Header\r\n\r\n'"
check_out "Content-Length with Transfer-Encoding: 400" '^HTTP/1.1 400 Bad Request' \
	bash -c "$(declare -f raw); L=$L; raw $PB 'POST /echo HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n'"
check_out "garbage: 400" '^HTTP/1.1 400 Bad Request' \
	bash -c "$(declare -f raw); L=$L; raw $PB '\x01\x02\xff garbage\r\n\r\n'"
check "b still serves after the bad input" $CURL -f http://$L:$PB/ok

# --- h2c on the gRPC port
if command -v nghttp > /dev/null; then
	check_out "h2c: nghttp GET /ok" '^ok$' timeout 10 nghttp http://$L:$GB/ok
	check_out "h2c: nghttp POST /echo" '^hello h2$' \
		bash -c "printf 'hello h2\n' > $tmp/h2in && timeout 10 nghttp -d $tmp/h2in http://$L:$GB/echo"
else
	skip "h2c: nghttp GET /ok" "nghttp not installed"
	skip "h2c: nghttp POST /echo" "nghttp not installed"
fi
if command -v h2load > /dev/null; then
	check_out "h2c: h2load 2000 x /ok all succeed" '2000 succeeded, 0 failed' \
		timeout 20 h2load -n 2000 -c 4 -m 10 http://$L:$GB/ok
else
	skip "h2c: h2load 2000 x /ok all succeed" "h2load not installed"
fi

# --- gRPC with a stock client
if [ $have_grpc = 1 ]; then
	cat > "$tmp/pyclient.py" <<'EOF'
import sys, grpc, abc_pb2, abc_pb2_grpc
ch = grpc.insecure_channel(sys.argv[1])
stub = abc_pb2_grpc.EchoStub(ch)
what = sys.argv[2]
try:
    if what == "say":
        r = stub.Say(abc_pb2.SayRequest(text="héllo", seq=-7), timeout=5)
        print("say text=%s seq=%d served_by=%s" % (r.text, r.seq, r.served_by))
    elif what == "count":
        print("count", " ".join(str(x.n) for x in
              stub.Count(abc_pb2.CountRequest(count=5, interval_ms=20), timeout=5)))
    elif what == "unknown":
        ch.unary_unary("/abc.Echo/Nope")(b"", timeout=5)
    elif what == "garbage":
        ch.unary_unary("/abc.Echo/Say")(b"\xff\xff\xff", timeout=5)
    elif what == "toomany":
        next(stub.Count(abc_pb2.CountRequest(count=20000), timeout=5))
    print("OK")
except grpc.RpcError as e:
    print("status", e.code().name, e.details())
EOF
	pyc() { (cd "$tmp" && timeout 20 $PY pyclient.py "$@"); }
	check_out "grpcio client: Say against b" '^say text=héllo seq=-7 served_by=b$' pyc $L:$GB say
	check_out "grpcio client: Count streams 1..5 from b" '^count 1 2 3 4 5$' pyc $L:$GB count
	check_out "grpcio client: unknown method is UNIMPLEMENTED" '^status UNIMPLEMENTED' \
		pyc $L:$GB unknown
	check_out "grpcio client: undecodable request is INTERNAL" '^status INTERNAL' \
		pyc $L:$GB garbage
	check_out "grpcio client: count over 10000 is INVALID_ARGUMENT" '^status INVALID_ARGUMENT' \
		pyc $L:$GB toomany
	check_out "--fail-rate 1: Say is UNAVAILABLE" '^status UNAVAILABLE injected failure' \
		pyc $L:$GB2 say
else
	for t in "grpcio client: Say against b" "grpcio client: Count streams 1..5 from b" \
		"grpcio client: unknown method is UNIMPLEMENTED" \
		"grpcio client: undecodable request is INTERNAL" \
		"grpcio client: count over 10000 is INVALID_ARGUMENT" \
		"--fail-rate 1: Say is UNAVAILABLE"; do
		skip "$t" "python3-grpcio or python3-grpc-tools not installed"
	done
fi

# --- traffic between the services
stat_ok() { $CURL "http://$L:$1/stats" | grep -Eq "$2"; }
check "b calls c: c counts gRPC calls served" \
	wait_for 10 stat_ok $PC '"grpc":[1-9]'
check "b's Say and Count calls to c succeed" \
	wait_for 10 stat_ok $PB '"say":\{"ok":[1-9][0-9]*,"fail":[0-9]+\},"count":\{"ok":[1-9]'
check "c's calls to b succeed" \
	wait_for 10 stat_ok $PC '"say":\{"ok":[1-9]'
check "a's calls to b and c succeed" \
	wait_for 10 stat_ok $PA '"b":\{"ok":[1-9][0-9]*,"fail":[0-9]+\},"c":\{"ok":[1-9]'
check_out "c's log has the periodic summary" 'abc-app c: last 1s: sent: say [0-9]+ ok' cat "$tmp/c.log"
check_out "logs are quiet: summaries, no per-request lines" '^0$' \
	bash -c "cat $tmp/a.log $tmp/b.log $tmp/c.log |
		grep -Evc 'abc-app [abc]: (last 1s: |service [abc]: |[a-z]+: call failed: )'"
check_out "--fail-rate 1: /hello answers 503" '^503$' \
	$CURL -o /dev/null -w '%{http_code}' http://$L:$PB2/hello

if [ $have_grpc = 1 ]; then
	# (calls made before the Python server was up count as failures)
	check "abc-app's gRPC client against a grpcio server: Say and Count succeed" \
		wait_for 10 stat_ok $PB2 '"say":\{"ok":[1-9][0-9]*,"fail":[0-9]+\},"count":\{"ok":[1-9]'
	check_out "the grpcio server saw the calls" '^say [1-9][0-9]* count [1-9]' \
		cat "$tmp/pyserver.counts" "$tmp/pyserver.log"
else
	for t in "abc-app's gRPC client against a grpcio server: Say and Count succeed" \
		"the grpcio server saw the calls"; do
		skip "$t" "python3-grpcio or python3-grpc-tools not installed"
	done
fi

# --- clean shutdown
kill -TERM "$pid_c"
check "SIGTERM: c exits within 5 s" wait_for 5 bash -c "! kill -0 $pid_c"
kill -0 "$pid_c" 2>/dev/null && kill -KILL "$pid_c"
wait "$pid_c"
rc=$?
check_out "SIGTERM: c exits with status 0 and says so" '^0 .*Terminated: shutting down$' \
	bash -c "echo $rc \$(tail -n 1 $tmp/c.log)"
wait_for 5 grep -q 'say: call failed' "$tmp/b.log"
check_out "b notices that c is gone" 'abc-app b: say: call failed: UNAVAILABLE' cat "$tmp/b.log"
