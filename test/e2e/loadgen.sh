#!/usr/bin/env bash
# The benchmark load generator (test/bench/loadgen) against real servers:
# nginx (HTTP/1.1 and h2c) for rate, counts and plausible latency; a closed
# port for connect errors; a small Python server for queueing (200 ms per
# request), timeouts, 5xx, chunked bodies and bodies cut short.
# Everything listens on 127.0.0.1 high ports picked free at run time; only
# the processes started here are stopped (trap EXIT); every wait is bounded.
. "$(dirname "$0")/lib.sh"
top=${MESHD_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
LG=${LG_BIN:-$top/build/bench/loadgen}
e2e_setup loadgen
# pyenv-style shims cost ~0.5 s per start; call the interpreter directly
PY=$(python3 -c 'import sys; print(sys.executable)' 2>/dev/null || command -v python3)


# free_port: a TCP port on 127.0.0.1 that nobody listens on right now.
free_port() {
	"$PY" -S -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# jget FILE EXPR: evaluates EXPR over the JSON object d read from FILE.
jget() {
	"$PY" -S -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"
}

# jcheck NAME FILE EXPR: ok when the Python expression over d is true.
jcheck() {
	local name=$1 file=$2 expr=$3 res
	res=$(jget "$file" "bool($expr)" 2>&1)
	if [ "$res" = True ]; then
		e2e_report 0 "$name"
	else
		e2e_report 1 "$name" "wanted $expr; got: $(cat "$file" 2>/dev/null) $res"
	fi
}

# The tool builds and its own checks pass: static musl as ./build.sh bench
# uses it, or (when only the glibc dependencies of a --sanitize build exist)
# with gcc into the temporary directory. LG_BIN overrides both.
if [ -n "${LG_BIN:-}" ]; then
	e2e_report 0 "loadgen given as $LG_BIN"
elif [ -e "$top/build/deps/musl/lib/libev.a" ] || [ ! -e "$top/build/deps/host/lib/libev.a" ]; then
	check "loadgen builds (make -C test/bench)" make -s -C "$top/test/bench"
else
	LG=$tmp/bin/loadgen
	check "loadgen builds (make -C test/bench, gcc, host deps)" make -s -C "$top/test/bench" \
		CC=gcc DEPS="$top/build/deps/host" OUT="$tmp/bin" LDFLAGS=
fi
check_out "loadgen --self-test: histogram precision and HTTP/1 framing" \
	', 0 failed$' "$LG" --self-test
check_fails "usage error: status 2" 2 "$LG" --url http://127.0.0.1:1/ --rate 0
check_fails "names are refused (IP literal only): status 2" 2 "$LG" --url http://localhost:1/ --rate 1
check_fails "--rate and --closed together: status 2" 2 "$LG" --url http://127.0.0.1:1/ --rate 1 --closed

# --- nginx: HTTP/1.1 and h2c --------------------------------------------
if ! command -v nginx >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
	DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq \
		--no-install-recommends nginx-light >/dev/null 2>&1
fi
if command -v nginx >/dev/null 2>&1; then
	p1=$(free_port)
	p2=$(free_port)
	chmod 755 "$tmp"
	head -c 1024 /dev/zero | tr '\0' 'x' > "$tmp/1k"
	chmod 644 "$tmp/1k"
	cat > "$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/body;
	proxy_temp_path $tmp/proxy;
	fastcgi_temp_path $tmp/fastcgi;
	uwsgi_temp_path $tmp/uwsgi;
	scgi_temp_path $tmp/scgi;
	keepalive_requests 1000000;
	server {
		listen 127.0.0.1:$p1;
		listen 127.0.0.1:$p2 http2;
		root $tmp;
		location / { }
	}
}
EOF
	nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log" > "$tmp/nginx.out" 2>&1 &
	pids+=($!)
	if e2e_wait_port "$p1" && e2e_wait_port "$p2"; then
		e2e_report 0 "nginx origin up (h1 :$p1, h2c :$p2)"
		for mode in h1 h2; do
			if [ $mode = h1 ]; then url=http://127.0.0.1:$p1/1k; flag=; else url=http://127.0.0.1:$p2/1k; flag=--h2; fi
			timeout 30 "$LG" --url "$url" $flag --rate 200 --duration 2 --warmup 0.5 \
				--connections 4 --json > "$tmp/$mode.json" 2> "$tmp/$mode.err"
			rc=$?
			e2e_report $([ $rc = 0 ] && echo 0 || echo 1) "$mode: 200 rps for 2 s exits 0" \
				"status $rc: $(cat "$tmp/$mode.err" "$tmp/$mode.json")"
			jcheck "$mode: 400 scheduled (200 rps x 2 s)" "$tmp/$mode.json" 'd["scheduled"] == 400'
			jcheck "$mode: completed ~400 (+-5%), all 2xx" "$tmp/$mode.json" \
				'380 <= d["completed"] <= 420 and d["ok_2xx"] == d["completed"] and d["non_2xx"] == 0'
			jcheck "$mode: no errors of any kind" "$tmp/$mode.json" \
				'd["errors_total"] == 0 and sum(d["errors"].values()) == 0'
			jcheck "$mode: achieved rate ~200/s" "$tmp/$mode.json" '190 <= d["achieved_rps"] <= 210'
			jcheck "$mode: p50 plausible (< 5 ms), percentiles ordered" "$tmp/$mode.json" \
				'0 < d["latency_us"]["p50"] < 5000 and d["latency_us"]["p50"] <= d["latency_us"]["p90"] <= d["latency_us"]["p99"] <= d["latency_us"]["p999"] <= d["latency_us"]["max"]'
			jcheck "$mode: latency from intended time >= service time" "$tmp/$mode.json" \
				'd["latency_us"]["max"] >= d["service_us"]["max"] and d["latency_us"]["mean"] >= d["service_us"]["mean"]'
			timeout 20 "$LG" --url "$url" $flag --closed --duration 1 --warmup 0.2 \
				--connections 4 --json > "$tmp/$mode-closed.json" 2>"$tmp/$mode-closed.err"
			jcheck "$mode: --closed saturates (> 1000 req/s), no errors" "$tmp/$mode-closed.json" \
				'd["mode"] == "closed" and d["achieved_rps"] > 1000 and d["errors_total"] == 0 and d["completed"] == d["ok_2xx"]'
		done
		check_out "text summary names the percentiles" 'p50 [0-9]+ +p90 [0-9]+ +p99 [0-9]+ +p99\.9 [0-9]+ +max' \
			timeout 20 "$LG" --url "http://127.0.0.1:$p1/1k" --rate 100 --duration 0.5 --warmup 0
		timeout 20 "$LG" --url "http://127.0.0.1:$p1/missing" --rate 100 --duration 0.5 --warmup 0 \
			--json > "$tmp/404.json" 2>"$tmp/404.err"
		jcheck "404s are completed but non-2xx (not errors)" "$tmp/404.json" \
			'd["completed"] == 50 and d["non_2xx"] == 50 and d["ok_2xx"] == 0 and d["errors_total"] == 0'
	else
		e2e_report 1 "nginx origin up" "$(cat "$tmp/nginx.out" "$tmp/nginx-error.log" 2>/dev/null)"
	fi
else
	echo "ok $((e2e_n += 1)) - nginx tests # SKIP nginx not installed (apt-get install nginx-light)"
fi

# --- a closed port: connect errors ---------------------------------------
dead=$(free_port)
timeout 20 "$LG" --url "http://127.0.0.1:$dead/" --rate 50 --duration 1 --warmup 0 \
	--connections 2 --timeout 300 --json > "$tmp/dead.json" 2> "$tmp/dead.err"
rc=$?
e2e_report $([ $rc = 1 ] && echo 0 || echo 1) "closed port: exit status 1" "status $rc"
jcheck "closed port: connect errors counted, nothing completed" "$tmp/dead.json" \
	'd["errors"]["connect"] > 0 and d["completed"] == 0 and d["errors_total"] >= d["errors"]["connect"]'
jcheck "closed port: unsent requests time out in the local queue" "$tmp/dead.json" \
	'd["errors"]["timeout"] == d["scheduled"] == 50'
check_out "closed port: the reason is on stderr" 'connect: Connection refused' cat "$tmp/dead.err"

# --- Python server: service time 200 ms, and misbehaviour ----------------
cat > "$tmp/slow.py" <<'EOF'
import sys, time, socket
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def send(self, code, body, extra=()):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra: self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/slow":
            time.sleep(0.2)
            self.send(200, b"slow\n")
        elif self.path == "/503":
            self.send(503, b"busy\n")
        elif self.path == "/close":
            self.send(200, b"bye\n", [("Connection", "close")])
            self.close_connection = True
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b"hello ", b"chunked ", b"world\n"):
                self.wfile.write(b"%x;x=1\r\n%s\r\n" % (len(part), part))
                self.wfile.flush()
            self.wfile.write(b"0\r\nX-Trailer: 1\r\n\r\n")
        elif self.path == "/short":
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            self.wfile.write(b"only ten b")
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.send(404, b"no\n")
class S(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
ps=$(free_port)
"$PY" "$tmp/slow.py" "$ps" > "$tmp/py.out" 2>&1 &
pids+=($!)
if e2e_wait_port "$ps"; then
	# 20 rps offered, 2 connections x 200 ms = 10 rps served: requests
	# queue locally; latency from the intended time grows well past 200 ms
	# while each response still takes ~200 ms once sent.
	timeout 30 "$LG" --url "http://127.0.0.1:$ps/slow" --rate 20 --duration 2 --warmup 0 \
		--connections 2 --timeout 10000 --json > "$tmp/slow.json" 2> "$tmp/slow.err"
	jcheck "slow server: every request answered, no errors" "$tmp/slow.json" \
		'd["completed"] == 40 and d["errors_total"] == 0'
	jcheck "slow server: p50 >= 200 ms" "$tmp/slow.json" 'd["latency_us"]["p50"] >= 200000'
	jcheck "slow server: queueing shows (p50 > 600 ms, max > 1.5 s)" "$tmp/slow.json" \
		'd["latency_us"]["p50"] > 600000 and d["latency_us"]["max"] > 1500000'
	jcheck "slow server: service time stays ~200 ms (what wrk would show)" "$tmp/slow.json" \
		'195000 <= d["service_us"]["p50"] < 400000'
	jcheck "slow server: achieved rate reflects capacity (<= 10/s, not 20)" "$tmp/slow.json" \
		'4 <= d["achieved_rps"] <= 11'
	timeout 20 "$LG" --url "http://127.0.0.1:$ps/slow" --rate 20 --duration 0.5 --warmup 0 \
		--connections 2 --timeout 100 --json > "$tmp/tmo.json" 2>"$tmp/tmo.err"
	jcheck "timeout 100 ms < service 200 ms: every request a timeout" "$tmp/tmo.json" \
		'd["errors"]["timeout"] == 10 and d["completed"] == 0'
	timeout 20 "$LG" --url "http://127.0.0.1:$ps/503" --rate 50 --duration 0.4 --warmup 0 \
		--connections 2 --json > "$tmp/503.json" 2>"$tmp/503.err"
	jcheck "503: counted as completed, non-2xx and status>=500 errors" "$tmp/503.json" \
		'd["completed"] == 20 and d["non_2xx"] == 20 and d["errors"]["status_5xx"] == 20'
	timeout 20 "$LG" --url "http://127.0.0.1:$ps/chunked" --rate 50 --duration 0.4 --warmup 0 \
		--connections 2 --json > "$tmp/chunked.json" 2>"$tmp/chunked.err"
	jcheck "chunked bodies with trailers: all complete, no errors" "$tmp/chunked.json" \
		'd["completed"] == 20 and d["ok_2xx"] == 20 and d["errors_total"] == 0'
	timeout 20 "$LG" --url "http://127.0.0.1:$ps/close" --rate 50 --duration 0.4 --warmup 0 \
		--connections 2 --json > "$tmp/close.json" 2>"$tmp/close.err"
	jcheck "Connection: close: reconnects, all complete, no errors" "$tmp/close.json" \
		'd["completed"] == 20 and d["errors_total"] == 0'
	timeout 20 "$LG" --url "http://127.0.0.1:$ps/short" --rate 50 --duration 0.4 --warmup 0 \
		--connections 2 --json > "$tmp/short.json" 2>"$tmp/short.err"
	jcheck "body cut short: protocol errors, nothing completed" "$tmp/short.json" \
		'd["errors"]["protocol"] == 20 and d["completed"] == 0'
else
	e2e_report 1 "python test server up" "$(cat "$tmp/py.out")"
fi
