#!/usr/bin/env bash
# meshd proxy in transparent mode between two meshed pods (test/e2e/pods.sh):
# real clients in pod "cli" reach the apps of pod "srv" through cli's
# outbound proxy and srv's inbound proxy, both captured by `meshd init`
# rules and run as uid 2102 with their default listeners.
#
#   cli app (uid 1000) ─► cli outbound :4140 ─► srv inbound :4143 ─► srv app
#
# Pods: srv 10.214.0.10 / fd00:214:0::10, cli 10.214.0.20 / fd00:214:0::20.
# srv's apps (uid 1000), all listening on [::] (v4 and v6):
#   8090 / 8081   abc-app b: HTTP/1.1 / h2c (origin endpoints, gRPC abc.Echo)
#   8093 / 8083   abc-app b --name mix --fail-rate 1: only the metrics mix
#   8095          proxy_pods/rst_server.py: resets in the middle of a body
#   8096          proxy_pods/ws.py server: WebSocket
#   9000, 9001    socat echo (cat), socat `wc -c`: on --opaque-ports
#   9003          socat banner (server speaks first): on --opaque-ports
#   9002, 9004    socat echo, `wc -c`: not opaque ports (detected)
# Both proxies get --opaque-ports 9000,9001,9003 (without discovery, the
# client side learns a destination's opaque ports from its own flags).
#
# Checks: HTTP/1.1 GET, POST (content-length and chunked), keep-alive and
# upstream pooling; h2c with curl, nghttp and h2load; gRPC unary and server
# streaming with Python grpcio and an error status intact; opaque TCP on an
# opaque port and detected, both directions, half-close, server-first;
# WebSocket (proxy_pods/ws.py, RFC 6455 on raw sockets); IPv6 with the
# default listeners, and with dual-stack listener flags (pods srv6, cli6);
# a 1 GB body both ways and 256 MiB over h2c with each proxy's VmRSS
# sampled every 0.5 s; a slow reader; an upstream reset mid-response; exact
# metrics on both proxies after a scripted mix, and promtool; a graceful
# SIGTERM with no sanitizer report; cleanup.
#
# Every client call has a timeout; everything started here is ended by
# pods.sh (explicitly at the end, by its EXIT trap otherwise). The pods cap
# their socket buffers at 4 MiB. About 1 to 2 minutes.
# RSS_LIMIT_KB (8192) bounds each proxy's VmRSS during the big transfers;
# PROXY_PODS_KEEP=DIR keeps the scratch files and logs for a post-mortem.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "ok 1 - proxy pods # SKIP needs root (network namespaces)"
	exit 0
fi
PY=/usr/bin/python3
for tool in ip iptables setpriv curl socat "$PY"; do
	if ! command -v "$tool" >/dev/null; then
		e2e_report 1 "tools present" "missing $tool"
		exit 0
	fi
done
unset MESHD_MODE MESHD_OUTBOUND_ADDR MESHD_INBOUND_ADDR MESHD_ADMIN_ADDR \
	MESHD_OPAQUE_PORTS MESHD_BACKEND MESHD_LOG_LEVEL MESHD_WORKLOAD_LABELS
RSS_LIMIT_KB=${RSS_LIMIT_KB:-8192}

. "$(dirname "$0")/pods.sh"
APP_UID=$POD_APP_UID
pods_init meshd-ppod
if [ -z "$POD_APP" ]; then
	e2e_report 1 "abc-app is built" "missing build/examples/abc-app (make -C examples)"
	exit 0
fi
PP=$POD_DIR/pp
# the machine's own redirect rules, to compare at the end (never changed here)
root_rules() {
	local t
	for t in iptables-nft-save ip6tables-nft-save iptables-legacy-save ip6tables-legacy-save; do
		command -v $t >/dev/null && $t -t nat 2>/dev/null | grep -v '^#' |
			sed 's/\[[0-9]*:[0-9]*\]//'
	done
}
ROOT_RULES=$(root_rules)
cp -r "$(dirname "$0")/proxy_pods" "$PP"
chmod -R a+rX "$PP"
T=$POD_DIR/t
mkdir -p "$T"
chmod 777 "$T"

skip() { e2e_n=$((e2e_n + 1)); echo "ok $e2e_n - $1 # SKIP $2"; }

# check_eq NAME WANT CMD...: ok when CMD's stdout is exactly WANT (its
# stderr is shown on failure).
check_eq() {
	local name=$1 want=$2 out
	shift 2
	out=$("$@" 2>"$T/eq.err")
	if [ "$out" = "$want" ]; then
		e2e_report 0 "$name"
	else
		e2e_report 1 "$name" "got '$out', want '$want'; $(cat "$T/eq.err")"
	fi
}

# c CMD...: CMD in pod cli as the app's uid (so captured by the outbound rule);
# cb SCRIPT: the same for a bash script (pipes, redirections).
c() { pod_exec cli -u "$APP_UID" -- "$@"; }
cb() { pod_exec cli -u "$APP_UID" -- bash -c "$1"; }

# scrape POD FILE: the pod proxy's /metrics into FILE.
scrape() { pod_exec "$1" curl -sS -m 5 http://127.0.0.1:4191/metrics >"$2"; }

# mq FILE NAME LABEL=VALUE...: summed value of the matching series.
mq() { "$PY" "$PP/mq.py" "$@"; }

# wait_ports POD PORT...: until each PORT accepts on the pod's loopback
# (never redirected), 5 s each.
wait_ports() {
	local pod=$1 p i
	shift
	for p in "$@"; do
		for ((i = 0; i < 50; i++)); do
			pod_exec "$pod" bash -c "exec 3<>/dev/tcp/127.0.0.1/$p" 2>/dev/null && break
			sleep 0.1
		done
		[ $i -lt 50 ] || { echo "port $p of $pod not listening" >&2; return 1; }
	done
}

# alive: both proxies run and answer /live.
alive() {
	kill -0 "$CLI_PX" && kill -0 "$SRV_PX" &&
		[ "$(pod_exec cli curl -s -m 3 http://127.0.0.1:4191/live)" = live ] &&
		[ "$(pod_exec srv curl -s -m 3 http://127.0.0.1:4191/live)" = live ]
}

# watch_rss PID SECONDS: while PID (a client started with pod_run) runs, at
# most SECONDS, samples both proxies' VmRSS every 0.5 s; sets RSS_CLI and
# RSS_SRV (max KiB), RSS_N (samples) and WATCH_RC (PID's exit status, 124
# when it had to be ended).
watch_rss() {
	local pid=$1 end=$((SECONDS + $2)) r
	RSS_CLI=0 RSS_SRV=0 RSS_N=0
	while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $end ]; do
		r=$(pod_rss_kb "$CLI_PX"); [ "${r:-0}" -gt $RSS_CLI ] && RSS_CLI=$r
		r=$(pod_rss_kb "$SRV_PX"); [ "${r:-0}" -gt $RSS_SRV ] && RSS_SRV=$r
		RSS_N=$((RSS_N + 1))
		sleep 0.5
	done
	if kill -0 "$pid" 2>/dev/null; then
		pod_kill "$pid"
		WATCH_RC=124
	else
		wait "$pid"
		WATCH_RC=$?
	fi
}

# rss_ok WHAT: one TAP line per proxy for the last watch_rss: its max VmRSS
# under RSS_LIMIT_KB. A sanitizer build gets its baseline (BASE_CLI/BASE_SRV)
# + 384 MiB instead: ASan keeps up to 256 MiB of freed memory in quarantine
# (each 64 KiB of an HTTP/2 body allocates and frees about 100 KiB), + 128
# MiB; still far below a buffered 1 GB body.
rss_ok() {
	local who kb lim note
	for who in cli srv; do
		if [ $who = cli ]; then kb=$RSS_CLI lim=$BASE_CLI; else kb=$RSS_SRV lim=$BASE_SRV; fi
		if [ "$SANITIZED" = 1 ]; then
			lim=$((lim + 393216)) note=" (sanitizer build: baseline + 384 MiB)"
		else
			lim=$RSS_LIMIT_KB note=
		fi
		[ "$kb" -gt 0 ] && [ "$kb" -lt "$lim" ]
		e2e_report $? "$1: $who proxy VmRSS max $kb KiB < $lim KiB$note ($RSS_N samples)" \
			"max VmRSS $kb KiB over $RSS_N samples"
	done
}
SANITIZED=0
grep -qa __asan_init "$MESHD_BIN" && SANITIZED=1

OPAQUE=9000,9001,9003
setup() {
	pod_create srv 10.214.0.10 && pod_create cli 10.214.0.20 || return 1
	# socket buffers of at most 4 MiB in the pods (the machine's may be
	# larger), so that what back-pressure leaves in the kernel is bounded
	pod_exec srv sysctl -qw net.ipv4.tcp_rmem="4096 131072 4194304" \
		net.ipv4.tcp_wmem="4096 16384 4194304" &&
		pod_exec cli sysctl -qw net.ipv4.tcp_rmem="4096 131072 4194304" \
			net.ipv4.tcp_wmem="4096 16384 4194304" || return 1
	pod_app srv b --listen '[::]:8090' --grpc-listen '[::]:8081' --rate 0 --report 0
	pod_app srv b --name mix --listen '[::]:8093' --grpc-listen '[::]:8083' \
		--fail-rate 1 --rate 0 --report 0
	pod_run srv -u "$APP_UID" -o "$T/rst.out" -- "$PY" "$PP/rst_server.py" 8095 "$T/rst.log"
	pod_run srv -u "$APP_UID" -o "$T/ws.out" -- "$PY" "$PP/ws.py" server 8096
	pod_run srv -u "$APP_UID" -- socat TCP6-LISTEN:9000,ipv6only=0,reuseaddr,fork EXEC:cat
	pod_run srv -u "$APP_UID" -- socat -t 5 TCP6-LISTEN:9001,ipv6only=0,reuseaddr,fork \
		SYSTEM:'wc -c'
	pod_run srv -u "$APP_UID" -- socat TCP6-LISTEN:9002,ipv6only=0,reuseaddr,fork EXEC:cat
	pod_run srv -u "$APP_UID" -- socat TCP6-LISTEN:9003,ipv6only=0,reuseaddr,fork \
		SYSTEM:'echo 220 pods banner; exec cat'
	pod_run srv -u "$APP_UID" -- socat -t 5 TCP6-LISTEN:9004,ipv6only=0,reuseaddr,fork \
		SYSTEM:'wc -c'
	pod_wait_http srv http://127.0.0.1:8090/ok 10 &&
		pod_wait_http srv http://127.0.0.1:8093/ok 10 &&
		wait_ports srv 8081 8083 8095 8096 9000 9001 9002 9003 9004 || return 1
	pod_mesh srv --opaque-ports "$OPAQUE" && pod_mesh cli --opaque-ports "$OPAQUE"
}
setup
e2e_report $? "pods srv and cli meshed (init + proxy as uid $POD_PROXY_UID), apps up" \
	"$(tail -n 5 "$POD_DIR"/*.log 2>/dev/null)"
SRV=$(pod_ip srv)
SRV6=$(pod_ip6 srv)
SRV_PX=$(pod_proxy_pid srv)
CLI_PX=$(pod_proxy_pid cli)
if [ -z "$SRV_PX" ] || [ -z "$CLI_PX" ]; then
	e2e_report 1 "proxies running" "see the proxy logs above"
	exit 0
fi
CURL="curl -sS -m 10"
U=http://$SRV:8090
AUTH=$SRV:8090
OUTL=(direction=outbound tls=no_identity no_tls_reason=not_provided_by_service_discovery)
INL=(direction=inbound tls=no_identity no_tls_reason=no_tls_from_remote)
t0=$SECONDS

# ---- HTTP/1.1 ----
scrape cli "$T/m0.cli"; scrape srv "$T/m0.srv"
check_out "HTTP/1.1 GET through both proxies" '^ok$' c $CURL "$U/ok"
check_out "HTTP/1.1 GET: status and body pass (404)" '^404 not found' \
	cb "$CURL -w '%{http_code} ' -o $T/404 $U/nope && cat $T/404"
head -c 1000000 /dev/urandom >"$T/body1m"
chmod 644 "$T/body1m"
check "HTTP/1.1 POST /echo, Content-Length, 1 MB exact" cb \
	"$CURL --data-binary @$T/body1m $U/echo -o $T/echo1 && cmp $T/body1m $T/echo1"
check "HTTP/1.1 POST /echo, chunked, 1 MB exact" cb \
	"$CURL -H 'Transfer-Encoding: chunked' --data-binary @$T/body1m $U/echo -o $T/echo2 &&
	 cmp $T/body1m $T/echo2"
check_out "HTTP/1.1 chunked response (1 MB) crosses" '^1000000$' \
	c $CURL -o /dev/null -w '%{size_download}' "$U/bytes/1000000?chunked=1"
check_out "keep-alive: curl reuses its connection to the outbound proxy" \
	'Re-using existing connection.*Re-using existing connection' cb \
	"$CURL -v -o /dev/null $U/ok -o /dev/null $U/hello -o /dev/null $U/ok 2>&1 | tr '\n' ' '"
scrape srv "$T/m1.srv"
for i in 1 2 3 4 5 6; do c $CURL -o /dev/null "$U/ok"; done
scrape srv "$T/m2.srv"
a=$(mq "$T/m1.srv" tcp_open_total direction=inbound peer=src 2>/dev/null)
b=$(mq "$T/m2.srv" tcp_open_total direction=inbound peer=src 2>/dev/null)
check_out "pooling: 6 separate client connections, at most 1 new cli->srv connection" \
	'^[01]$' echo $((b - a))
scrape cli "$T/m3.cli"; scrape srv "$T/m3.srv"
n0=$(mq "$T/m0.cli" request_total "${OUTL[@]}" authority=$AUTH 2>/dev/null)
n1=$(mq "$T/m3.cli" request_total "${OUTL[@]}" authority=$AUTH 2>/dev/null)
check_eq "the HTTP/1.1 requests crossed cli's outbound proxy (14 counted)" 14 echo $((n1 - n0))
n0=$(mq "$T/m0.srv" request_total "${INL[@]}" target_addr=$AUTH 2>/dev/null)
n1=$(mq "$T/m3.srv" request_total "${INL[@]}" target_addr=$AUTH 2>/dev/null)
check_eq "the HTTP/1.1 requests crossed srv's inbound proxy (14 counted)" 14 echo $((n1 - n0))

# ---- HTTP/2 (h2c prior knowledge on abc-app's --grpc-listen port) ----
H2=http://$SRV:8081
check_out "h2c: curl --http2-prior-knowledge GET /ok" '^HTTP/2 200 .*ok $' cb \
	"$CURL -i --http2-prior-knowledge $H2/ok | tr -d '\r' | tr '\n' ' '"
check "h2c: curl POST /echo, 1 MB exact" cb \
	"$CURL --http2-prior-knowledge --data-binary @$T/body1m $H2/echo -o $T/echo3 &&
	 cmp $T/body1m $T/echo3"
if command -v nghttp >/dev/null; then
	check_out "h2c: nghttp -v, SETTINGS exchanged, :status 200, body" \
		'recv SETTINGS frame.*recv \(stream_id=[0-9]+\) :status: 200.* ok \[[ 0-9.]+\] recv DATA frame <length=3, flags=0x01' \
		cb "timeout 10 nghttp -v $H2/ok | tr '\n' ' '"
else
	skip "h2c: nghttp -v" "nghttp not installed"
fi
if command -v h2load >/dev/null; then
	c timeout 60 h2load -n 2000 -c 4 -m 10 "$H2/ok" >"$T/h2load.out" 2>&1
	check_out "h2load -n 2000 -c 4 -m 10: all succeed, 100% 2xx" \
		'2000 succeeded, 0 failed, 0 errored.*status codes: 2000 2xx' \
		bash -c "tr '\n' ' ' <$T/h2load.out"
else
	skip "h2load" "h2load not installed"
fi

# ---- gRPC with Python grpcio ----
have_grpc=0
if timeout 20 "$PY" -c 'import grpc, grpc_tools' 2>/dev/null &&
	mkdir -p "$T/stubs" &&
	timeout 30 "$PY" -m grpc_tools.protoc -I"$MESHD_TOP/examples/app" \
		--python_out="$T/stubs" --grpc_python_out="$T/stubs" \
		"$MESHD_TOP/examples/app/abc.proto" 2>"$T/protoc.err"; then
	chmod -R a+rX "$T/stubs"
	have_grpc=1
fi
grpc() { c timeout 20 "$PY" "$PP/grpc_client.py" "$T/stubs" "$@"; }
if [ $have_grpc = 1 ]; then
	check_out "gRPC (grpcio): unary Say through both proxies" \
		'^say text=héllo pods seq=-42 served_by=b$' grpc "$SRV:8081" say
	check_out "gRPC (grpcio): server-streaming Count 1..5 through both proxies" \
		'^count 1 2 3 4 5 served_by=b$' grpc "$SRV:8081" count
else
	skip "gRPC (grpcio): unary Say" "python3-grpcio or python3-grpc-tools missing"
	skip "gRPC (grpcio): server-streaming Count" "python3-grpcio or python3-grpc-tools missing"
fi

# ---- opaque TCP ----
req='GET /smuggle HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'
printf "$req" >"$T/req"
check "opaque port: HTTP-looking bytes (CL+TE) come back verbatim, never parsed" cb \
	"timeout 10 socat -t 3 - TCP:$SRV:9000 <$T/req >$T/req.echo && cmp $T/req $T/req.echo"
check_out "opaque port: server-speaks-first banner within 2 s (no detection wait)" \
	'^220 pods banner' \
	c timeout 5 bash -c "exec 3<>/dev/tcp/$SRV/9003 && read -t 2 -r l <&3 && echo \"\$l\""
head -c 1000000 /dev/urandom >"$T/tcp1m"
chmod 644 "$T/tcp1m"
check_out "opaque port: half-close: 1 MB sent, FIN crosses, the answer comes back after it" \
	'^ *1000000$' c timeout 15 socat -t 10 - "TCP:$SRV:9001" <"$T/tcp1m"
{ printf '\x00\x01\x02binary'; head -c 2000000 /dev/urandom; } >"$T/tcp2m"
chmod 644 "$T/tcp2m"
check "detected opaque (binary first bytes): 2 MB echoed exactly, both directions" cb \
	"timeout 15 socat -t 5 - TCP:$SRV:9002 <$T/tcp2m >$T/tcp2m.echo && cmp $T/tcp2m $T/tcp2m.echo"
check_out "detected opaque: half-close, the answer comes back after the FIN" \
	'^ *2000009$' c timeout 15 socat -t 10 - "TCP:$SRV:9004" <"$T/tcp2m"
scrape srv "$T/m4.srv"
check_out "srv's proxy counted opaque TCP to port 9002" '^[1-9]' \
	mq "$T/m4.srv" tcp_open_total direction=inbound peer=dst target_addr=$SRV:9002

# ---- WebSocket ----
check_out "WebSocket: handshake, server-first frame, frames both ways, close" \
	'handshake ok.*server-first frame ok.*70000 bytes.*close ok.*WS OK' cb \
	"timeout 20 $PY $PP/ws.py client $SRV 8096 2>&1 | tr '\n' ' '"
scrape cli "$T/mws.cli"; scrape srv "$T/mws.srv"
check_eq "WebSocket: counted as one 101 on both proxies (out, in)" "1 1" bash -c \
	"echo \$($PY $PP/mq.py $T/mws.cli response_total ${OUTL[*]} authority=$SRV:8096 status_code=101) \
	 \$($PY $PP/mq.py $T/mws.srv response_total ${INL[*]} target_addr=$SRV:8096 status_code=101)"

# ---- IPv6 ----
# With their default listeners (outbound 127.0.0.1:4140, inbound
# 0.0.0.0:4143) the proxies must still carry the IPv6 traffic that
# `meshd init`'s ip6tables rules redirect to them ([::1]:4140 and
# [pod address]:4143).
S6=$("$PY" -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]))' "$SRV6")
check_out "IPv6: GET [$S6]:8090/ok through both proxies" '^ok$' \
	c $CURL "http://[$S6]:8090/ok"
check_out "IPv6: h2c GET through both proxies" '^ok$' \
	c $CURL --http2-prior-knowledge "http://[$S6]:8081/ok"
scrape cli "$T/m5.cli"; scrape srv "$T/m5.srv"
check_eq "IPv6: cli's outbound proxy counted the v6 requests (HTTP/1.1, h2c)" "1 1" bash -c \
	"echo \$($PY $PP/mq.py $T/m5.cli request_total ${OUTL[*]} authority=[$S6]:8090 target_addr=[$S6]:8090) \
	 \$($PY $PP/mq.py $T/m5.cli request_total ${OUTL[*]} authority=[$S6]:8081 target_addr=[$S6]:8081)"
check_eq "IPv6: srv's inbound proxy counted the v6 requests (HTTP/1.1, h2c)" "1 1" bash -c \
	"echo \$($PY $PP/mq.py $T/m5.srv request_total ${INL[*]} target_addr=[$S6]:8090) \
	 \$($PY $PP/mq.py $T/m5.srv request_total ${INL[*]} target_addr=[$S6]:8081)"
# The same data path with dual-stack listeners set by flag (inbound [::]:4143
# on srv6, outbound [::]:4140 on cli6): tells a listener problem from a
# data-path one.
setup6() {
	pod_create srv6 10.214.0.11 && pod_create cli6 10.214.0.21 || return 1
	pod_app srv6 b --listen '[::]:8090' --grpc-listen '[::]:8081' --rate 0 --report 0
	pod_wait_http srv6 http://127.0.0.1:8090/ok 10 || return 1
	pod_mesh srv6 --inbound-addr '[::]:4143' && pod_mesh cli6 --outbound-addr '[::]:4140'
}
setup6
e2e_report $? "IPv6: pods srv6 and cli6 meshed with dual-stack listener flags"
S66=$("$PY" -c 'import ipaddress, sys; print(ipaddress.ip_address(sys.argv[1]))' "$(pod_ip6 srv6)")
check_out "IPv6 (dual-stack listener flags): GET and h2c GET through both proxies" '^ok ok $' \
	pod_exec cli6 -u "$APP_UID" -- bash -c "$CURL http://[$S66]:8090/ok | tr '\n' ' ' &&
	 $CURL --http2-prior-knowledge http://[$S66]:8081/ok | tr '\n' ' '"
scrape cli6 "$T/m5.cli6"; scrape srv6 "$T/m5.srv6"
check_eq "IPv6 (dual-stack listener flags): counted by both proxies (out, in)" "1 1" bash -c \
	"echo \$($PY $PP/mq.py $T/m5.cli6 request_total ${OUTL[*]} target_addr=[$S66]:8090) \
	 \$($PY $PP/mq.py $T/m5.srv6 request_total ${INL[*]} target_addr=[$S66]:8090)"

# ---- a 1 GB body, memory sampled every 0.5 s ----
GB=1073741824
BASE_CLI=$(pod_rss_kb "$CLI_PX") BASE_SRV=$(pod_rss_kb "$SRV_PX")
echo "# big body: baseline VmRSS cli $BASE_CLI KiB, srv $BASE_SRV KiB"
pod_run cli -u "$APP_UID" -o "$T/big.out" -- \
	curl -sS -m 90 -o /dev/null -w '%{http_code} %{size_download} %{speed_download}\n' \
	"$U/bytes/$GB"
s0=$SECONDS
watch_rss "$POD_LAST_PID" 95
echo "# big body: GET took $((SECONDS - s0)) s: $(cat "$T/big.out")"
check_out "1 GB GET /bytes streamed through both proxies, byte count exact" \
	"^200 $GB " cat "$T/big.out"
rss_ok "1 GB GET"
# (timeout makes a process group of the pipeline: ending it ends all of it)
pod_run cli -u "$APP_UID" -o "$T/bigpost.out" -- timeout 95 bash -c \
	"head -c $GB /dev/zero | curl -sS -m 90 -X POST -T - -o /dev/null \
	 -w '%{http_code} %{size_upload} %{size_download}\n' $U/echo"
s0=$SECONDS
watch_rss "$POD_LAST_PID" 100
echo "# big body: chunked POST /echo took $((SECONDS - s0)) s: $(cat "$T/bigpost.out")"
# (size_upload counts the chunk framing too)
check_out "1 GB chunked POST /echo: 1 GB up and 1 GB back" "^200 10[0-9]{8} $GB\$" cat "$T/bigpost.out"
rss_ok "1 GB POST /echo"

# HTTP/2: flow control end to end (a smaller body: this path is slower)
H2B=268435456
pod_run cli -u "$APP_UID" -o "$T/h2big.out" -- \
	curl -sS -m 100 --http2-prior-knowledge -o /dev/null \
	-w '%{http_code} %{size_download} %{speed_download}\n' "$H2/bytes/$H2B"
s0=$SECONDS
watch_rss "$POD_LAST_PID" 105
echo "# big body: h2c GET of 256 MiB took $((SECONDS - s0)) s: $(cat "$T/h2big.out")"
check_out "h2c: 256 MiB GET /bytes streamed through both proxies, byte count exact" \
	"^200 $H2B " cat "$T/h2big.out"
rss_ok "h2c 256 MiB GET"

# ---- a slow reader ----
scrape srv "$T/m6.srv"
pod_run cli -u "$APP_UID" -o "$T/slow.out" -- \
	curl -sS -m 5 --limit-rate 1M -o /dev/null -w '%{size_download}\n' "$U/bytes/104857600"
watch_rss "$POD_LAST_PID" 10
scrape srv "$T/m7.srv"
slow=$(grep -Eo '^[0-9]+$' "$T/slow.out")
echo "# slow reader: curl exit $WATCH_RC, read ${slow:-?} bytes in 5 s"
check_out "slow reader: curl at 1 MB/s read 1..40 MB of 100 MB in 5 s (then timed out)" \
	'^28 ([1-9][0-9]{6}|[1-3][0-9]{7})$' echo "$WATCH_RC $slow"
rss_ok "slow reader"
a=$(mq "$T/m6.srv" tcp_read_bytes_total direction=inbound peer=dst 2>/dev/null)
b=$(mq "$T/m7.srv" tcp_read_bytes_total direction=inbound peer=dst 2>/dev/null)
# Unthrottled, the app writes the 100 MB in about a second. With the pods'
# 4 MiB socket buffers, what srv's proxy may read beyond what curl took is
# at most 3 hops x (receive + send buffer) = 24 MiB, plus the proxies' own
# buffers (< 1 MiB); 32 MB is allowed.
ahead=$((b - a - ${slow:-0}))
check_out "slow reader: srv's proxy read at most 32 MB more than the client (back-pressure)" \
	'^-?([0-9]{1,7}|[12][0-9]{7}|3[01][0-9]{6})$' echo "$ahead"
echo "# slow reader: srv's proxy read $((b - a)) bytes from the app, $ahead more than curl"
check_out "after the slow reader: a new request succeeds" '^ok$' c $CURL "$U/ok"

# ---- an upstream that resets mid-response ----
scrape cli "$T/m8.cli"; scrape srv "$T/m8.srv"
c $CURL -o /dev/null -w '%{http_code} %{size_download}\n' "http://$SRV:8095/reset" \
	>"$T/reset.out" 2>&1
rc=$?
echo "# reset: curl exit $rc: $(tr '\n' ' ' <"$T/reset.out")"
check_out "reset mid-response: curl fails (exit 18/56), truncated after the head" \
	'^(18|56) 200 [0-9]+$' echo "$rc $(grep -Eo '^200 [0-9]+$' "$T/reset.out")"
check_out "reset mid-response: fewer than 1000000 body bytes arrived" '^[0-9]+$' bash -c \
	"n=\$(grep -Eo '^200 [0-9]+' $T/reset.out | cut -d' ' -f2); [ \"\${n:-0}\" -lt 1000000 ] && echo \$n"
check_out "reset mid-response: the origin did reset" '^reset 1$' cat "$T/rst.log"
check "reset mid-response: both proxies still up (/live)" alive
scrape cli "$T/m9.cli"; scrape srv "$T/m9.srv"
check_eq "reset mid-response: cli outbound response_total classification=failure +1" 1 bash -c \
	"echo \$(( \$($PY $PP/mq.py $T/m9.cli response_total ${OUTL[*]} authority=$SRV:8095 classification=failure) - \
	 \$($PY $PP/mq.py $T/m8.cli response_total ${OUTL[*]} authority=$SRV:8095 classification=failure) ))"
check_eq "reset mid-response: srv inbound response_total classification=failure +1" 1 bash -c \
	"echo \$(( \$($PY $PP/mq.py $T/m9.srv response_total ${INL[*]} target_addr=$SRV:8095 classification=failure) - \
	 \$($PY $PP/mq.py $T/m8.srv response_total ${INL[*]} target_addr=$SRV:8095 classification=failure) ))"
check_eq "reset mid-response: no success counted for it (cli, srv)" "0 0" bash -c \
	"echo \$($PY $PP/mq.py $T/m9.cli response_total authority=$SRV:8095 classification=success) \
	 \$($PY $PP/mq.py $T/m9.srv response_total target_addr=$SRV:8095 classification=success)"

# ---- exact metrics after a scripted mix (port 8093/8083: only used here) ----
M=http://$SRV:8093
for i in 1 2 3 4 5; do c $CURL -o /dev/null "$M/status/200"; done
for i in 1 2 3; do c $CURL -o /dev/null "$M/status/503"; done
for i in 1 2; do c $CURL -o /dev/null "$M/status/404"; done
if [ $have_grpc = 1 ]; then
	check_out "gRPC error status arrives intact: UNAVAILABLE (--fail-rate 1)" \
		'^status UNAVAILABLE injected failure' grpc "$SRV:8083" say
else
	# the same call by hand: an empty SayRequest in one gRPC message
	printf '\0\0\0\0\0' >"$T/grpc_empty"
	chmod 644 "$T/grpc_empty"
	check_out "gRPC error status arrives intact (curl, no grpcio): grpc-status 14" \
		'grpc-status: 14' c $CURL -i --http2-prior-knowledge -H 'content-type: application/grpc' \
		-H 'te: trailers' --data-binary @"$T/grpc_empty" "http://$SRV:8083/abc.Echo/Say"
fi
sleep 0.2
scrape cli "$T/mix.cli"; scrape srv "$T/mix.srv"
mx() {
	# mx FILE WANT METRIC LABELS...: one exact check
	local f=$1 want=$2
	shift 2
	check_eq "metrics ${f##*.}: $* = $want" "$want" mq "$f" "$@"
}
MO=("${OUTL[@]}" "authority=$SRV:8093" "target_addr=$SRV:8093")
MI=("${INL[@]}" "target_addr=$SRV:8093")
GO=("${OUTL[@]}" "authority=$SRV:8083" "target_addr=$SRV:8083")
GI=("${INL[@]}" "target_addr=$SRV:8083")
for side in cli srv; do
	if [ $side = cli ]; then H=("${MO[@]}"); G=("${GO[@]}"); else H=("${MI[@]}"); G=("${GI[@]}"); fi
	f=$T/mix.$side
	mx "$f" 10 request_total "${H[@]}"
	mx "$f" 5 response_total "${H[@]}" status_code=200 classification=success grpc_status!=
	mx "$f" 3 response_total "${H[@]}" status_code=503 classification=failure grpc_status!=
	mx "$f" 2 response_total "${H[@]}" status_code=404 classification=success grpc_status!=
	mx "$f" 10 response_total "${H[@]}"
	mx "$f" 5 response_latency_ms_count "${H[@]}" status_code=200
	mx "$f" 3 response_latency_ms_count "${H[@]}" status_code=503
	mx "$f" 2 response_latency_ms_count "${H[@]}" status_code=404
	mx "$f" 10 response_latency_ms_count "${H[@]}"
	mx "$f" 10 response_latency_ms_bucket "${H[@]}" le=+Inf
	mx "$f" 1 request_total "${G[@]}"
	mx "$f" 1 response_total "${G[@]}" status_code=200 classification=failure grpc_status=14
	mx "$f" 1 response_total "${G[@]}"
	mx "$f" 1 response_latency_ms_count "${G[@]}"
	check_out "metrics $side: tcp_open_total > 0" '^[1-9]' mq "$f" tcp_open_total
done
mx "$T/mix.cli" 0 request_total direction=inbound
mx "$T/mix.srv" 0 request_total direction=outbound
if command -v promtool >/dev/null; then
	for side in cli srv; do
		out=$(promtool check metrics <"$T/mix.$side" 2>&1); rc=$?
		other=$(printf '%s\n' "$out" |
			grep -v 'response_latency_ms metric names should not contain abbreviated units' |
			grep -v '^$')
		if [ "$rc" = 0 ] || { [ "$rc" = 3 ] && [ -z "$other" ]; }; then
			e2e_report 0 "promtool check metrics ($side; rc $rc: at most the response_latency_ms unit remark)"
		else
			e2e_report 1 "promtool check metrics ($side)" "rc=$rc: $out"
		fi
	done
else
	skip "promtool check metrics" "promtool (prometheus) not installed"
fi

check "the end: both proxies still up, never restarted" alive

# Graceful SIGTERM (the sanitizer build reports leaks and errors at exit).
# stop PID: TERM, then up to 5 s; appends its exit status (or "timeout") to RCS.
RCS=
stop() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	if kill -0 "$pid" 2>/dev/null; then
		pod_kill "$pid"
		RCS="$RCS timeout"
	else
		wait "$pid"
		RCS="$RCS $?"
	fi
}
stop "$CLI_PX"
stop "$SRV_PX"
check_eq "SIGTERM: both proxies exit with status 0 within 5 s (cli, srv)" " 0 0" echo "$RCS"
check "no sanitizer report or crash in the proxies' logs" bash -c \
	"! grep -E 'Sanitizer|runtime error|Segmentation|Aborted' $POD_DIR/cli.proxy.log $POD_DIR/srv.proxy.log"
echo "# proxy_pods: $((SECONDS - t0)) s after setup"

# ---- cleanup (the EXIT trap does the same if the test dies earlier) ----
# PROXY_PODS_KEEP=DIR keeps the scratch files (metrics, outputs, logs).
if [ -n "${PROXY_PODS_KEEP:-}" ]; then
	mkdir -p "$PROXY_PODS_KEEP" && cp -r "$POD_DIR"/*.log "$T" "$PROXY_PODS_KEEP"/ 2>/dev/null
fi
pids=("${POD_PIDS[@]}")
prefix=$POD_PREFIX-$$
out=$(pods_cleanup 2>&1)
left=
for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && left="$left $p"; done
[ -z "$left" ] && ! printf '%s' "$out" | grep -q 'processes not started here'
e2e_report $? "cleanup: every process started here ended, no other left in a pod" \
	"still alive:$left; $out"
check "cleanup: every namespace deleted" test -z "$(pods_leftovers "$prefix")"
check "the machine's namespace rules are unchanged (nat, v4 and v6)" \
	test "$ROOT_RULES" = "$(root_rules)"
