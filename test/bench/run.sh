#!/usr/bin/env bash
# test/bench/run.sh: side-by-side benchmark of two-hop proxy pairs
# (client -> proxy1 -> proxy2 -> origin) against "no proxy" (client ->
# origin). ./build.sh bench calls it; it can also be run alone (as root):
#
#   test/bench/run.sh              3 interleaved rounds (about 14 minutes)
#   test/bench/run.sh --quick      1 round, 3 s per measurement (about 3 minutes)
#   test/bench/run.sh --rounds 5 --duration 20 --contenders "direct haproxy"
#
# Options: --quick; --rounds N; --duration S (every measurement); --contenders
# "direct haproxy haproxy-h2link nginx meshd" (the default; direct is
# required; meshd-static is optional: named here only); --protos "h1 h2";
# --out DIR (default build/bench); --keep (keep configs and logs).
# CPUs: BENCH_CPU_LOAD (loadgen, default 0), BENCH_CPU_PROXY (both proxies,
# default 1), BENCH_CPU_ORIGIN (default: the loadgen CPU). meshd:
# MESHD_BIN (default build/meshd; copied at the start, so a rebuild during
# the run changes nothing), BENCH_MESHD_UID (the uid both meshd proxies run
# as, default 2102).
#
# What it measures, per contender and protocol (HTTP/1.1 keep-alive; h2c
# prior knowledge between client and first hop):
#   (a) throughput at saturation: loadgen --closed, proxies pinned to one
#       core, loadgen and the origin on another
#   (b) CPU per request per proxy: utime+stime from /proc/PID/stat over a
#       run divided by the requests loadgen completed in it (at saturation
#       and at 1000 req/s)
#   (c) p50/p99 at a constant 1000 req/s (loadgen open loop, latency from
#       the intended send time) and what the pair adds over no proxy
#   (d) RSS per proxy (VmRSS; nginx: master + worker) idle, and the peak
#       while serving 1000 req/s over 100 connections
# Contenders run one after the other in every round (round 1: all, round 2:
# all, ...) so that machine noise spreads over all of them; the report gives
# medians across rounds, ratios against the HAProxy pair, and the CPU time
# other processes used during every run. Output: a Markdown report on
# stdout and in build/bench/results.md; raw loadgen JSON in
# build/bench/raw.jsonl.
#
# Everything runs inside one network namespace created here (lo only),
# deleted on exit together with every process started in it.
#
# Correctness is checked in every run: a run with loadgen errors (connect,
# 5xx, timeouts, protocol) or any non-2xx response marks its row FAILING in
# the report; its figures are then not a measurement.
#
# Adding a contender: write c_<name>_avail and c_<name>_start (see the
# HAProxy pair), optionally c_<name>_check (the path check's requests took
# the intended path) and c_<name>_stop (undoes what start did besides
# spawning processes; see the meshd pair for both), optionally c_<name>_protos
# (the protocols it runs for, default all) and add a row to CONTENDER_TABLE
# below (and its name to OPTIONAL when it is not run by default). Nothing
# else changes.
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
cmdline="test/bench/run.sh${*:+ $*}"

t_start=$EPOCHREALTIME
die() { echo "bench: $*" >&2; exit 1; }
say() {
	local t=${EPOCHREALTIME/./} s=${t_start/./}
	printf 'bench [%4ds]: %s\n' $(( (t - s) / 1000000 )) "$*" >&2
}

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
rounds=3
d_sat=8 w_sat=1        # saturation: seconds measured, warm-up
d_lat=10 w_lat=2       # 1000 req/s latency run
d_rss=5 w_rss=1        # 1000 req/s over 100 connections, RSS sampled
quick=0
keep=0
only_contenders=""
only_protos="h1 h2"
out_dir=$top/build/bench
cpu_load=${BENCH_CPU_LOAD:-0}       # loadgen
cpu_origin=${BENCH_CPU_ORIGIN:-$cpu_load}
cpu_proxy=${BENCH_CPU_PROXY:-1}     # both proxies of a pair
meshd_bin=${MESHD_BIN:-$top/build/meshd}
meshd_uid=${BENCH_MESHD_UID:-2102}
lat_rate=1000
sat_conns_h1=16; sat_conns_h2=4; sat_streams_h2=16
lat_conns_h1=16; lat_conns_h2=4; lat_streams_h2=16
rss_conns=100; rss_streams_h2=10

usage() { sed -n '2,/^set /p' "$0" | sed -e '/^set /d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--quick) quick=1; rounds=1; d_sat=3; d_lat=3; d_rss=3; w_sat=0.5; w_lat=1; w_rss=0.5 ;;
	--rounds) rounds=${2:?--rounds N}; shift ;;
	--duration) d_sat=${2:?--duration S}; d_lat=$2; d_rss=$2; shift ;;
	--contenders) only_contenders=${2:?--contenders LIST}; shift ;;
	--protos) only_protos=${2:?--protos LIST}; shift ;;
	--out) out_dir=${2:?--out DIR}; shift ;;
	--keep) keep=1 ;;
	-h|--help) usage; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
case $rounds in ''|*[!0-9]*|0) die "--rounds wants a positive integer" ;; esac

[ "$(id -u)" = 0 ] || die "needs root (it creates a network namespace)"
for t in ip taskset haproxy nginx awk; do
	command -v $t >/dev/null 2>&1 || die "missing $t (Debian: iproute2 util-linux haproxy nginx-light)"
done
ncpu=$(nproc)
[ "$ncpu" -ge 2 ] || die "needs at least 2 CPUs (loadgen and origin on one, the proxies on another)"
for c in $cpu_load $cpu_origin $cpu_proxy; do
	[ "$c" -lt "$ncpu" ] || die "CPU $c does not exist (BENCH_CPU_* settings)"
done
clk_tck=$(getconf CLK_TCK)

make -s -C test/bench || die "could not build build/bench/loadgen (run ./build.sh first)"
LG=$top/build/bench/loadgen
mkdir -p "$out_dir"

# ---------------------------------------------------------------------------
# Namespace, processes, cleanup
# ---------------------------------------------------------------------------
NS=meshd-bench-$$
work=$(mktemp -d /tmp/meshd-bench.XXXXXX)
chmod 755 "$work"
started=()

nsx() { ip netns exec "$NS" "$@"; }

# stop_pids PID...: TERM, up to 3 s, then KILL. Only PIDs started here.
stop_pids() {
	local p i
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	for p in "$@"; do
		for i in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
}

cleanup() {
	local p
	[ ${#started[@]} -gt 0 ] && stop_pids "${started[@]}"
	if ip netns list 2>/dev/null | grep -qw "$NS"; then
		# anything left in our own namespace is ours
		for p in $(ip netns pids "$NS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
		ip netns del "$NS" 2>/dev/null
	fi
	[ $keep = 1 ] && say "kept $work" || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS" || die "ip netns add $NS failed"
ip -n "$NS" link set lo up || die "cannot bring lo up in $NS"

# spawn NAME CPU CMD...: starts CMD in the namespace pinned to CPU; sets
# SPAWNED to its PID (ip netns exec and taskset exec, so $! is CMD itself).
spawn() {
	local name=$1 cpu=$2
	shift 2
	ip netns exec "$NS" taskset -c "$cpu" "$@" > "$work/$name.log" 2>&1 &
	SPAWNED=$!
	started+=("$SPAWNED")
}

# wait_port PORT: up to 5 s for a listener in the namespace.
wait_port() {
	local i
	for i in $(seq 50); do
		nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# children PID: its child PIDs (nginx workers).
children() {
	local f line rest
	for f in /proc/[0-9]*/stat; do
		read -r line 2>/dev/null < "$f" || continue
		rest=${line##*) }
		set -- $rest
		[ "$2" = "$CHILD_OF" ] && echo "${f//[^0-9]/}"
	done
}
children_of() { CHILD_OF=$1 children; }

# cpu_ticks PID...: utime+stime summed, in clock ticks.
cpu_ticks() {
	local p line rest sum=0
	for p in "$@"; do
		read -r line 2>/dev/null < "/proc/$p/stat" || continue
		rest=${line##*) }
		set -- $rest
		sum=$((sum + ${12} + ${13}))
	done
	echo $sum
}

# ctx_switches PID...: voluntary + involuntary context switches summed
# (each process's main thread: every contender runs one thread per process).
ctx_switches() {
	local p k v sum=0
	for p in "$@"; do
		[ -r "/proc/$p/status" ] || continue
		while read -r k v; do
			case $k in
			voluntary_ctxt_switches: | nonvoluntary_ctxt_switches:) sum=$((sum + v)) ;;
			esac
		done 2>/dev/null < "/proc/$p/status"
	done
	echo $sum
}

# busy_ticks: machine-wide busy clock ticks (all CPUs).
busy_ticks() {
	local cpu u n s idle iow irq sirq steal rest
	read -r cpu u n s idle iow irq sirq steal rest < /proc/stat
	echo $((u + n + s + irq + sirq + steal)) $((u + n + s + idle + iow + irq + sirq + steal))
}

# rss_kib PID...: VmRSS summed, KiB.
rss_kib() {
	local p k v u sum=0
	for p in "$@"; do
		[ -r "/proc/$p/status" ] || continue
		while read -r k v u; do
			[ "$k" = VmRSS: ] && { sum=$((sum + v)); break; }
		done 2>/dev/null < "/proc/$p/status"
	done
	echo $sum
}

# quiet_check: waits up to 30 s for the machine to be < 15 % busy.
quiet_check() {
	local a b busy i
	for i in $(seq 30); do
		a=($(busy_ticks)); sleep 1; b=($(busy_ticks))
		busy=$(( (b[0] - a[0]) * 100 / (b[1] - a[1] > 0 ? b[1] - a[1] : 1) ))
		if [ $busy -lt 15 ]; then
			quiet_note="machine quiet: ${busy}% busy before the start"
			say "$quiet_note"
			return
		fi
		[ $i = 1 ] && say "machine ${busy}% busy; waiting up to 30 s for < 15 %"
	done
	quiet_note="WARNING: machine still ${busy}% busy after 30 s; results are noisy"
	say "$quiet_note"
}

# ---------------------------------------------------------------------------
# Origin: one nginx, 1 worker, a 1 KiB file; HTTP/1.1 :18080, h2c :18081
# ---------------------------------------------------------------------------
O_H1=18080
O_H2=18081
head -c 1024 /dev/zero | tr '\0' 'x' > "$work/1k"
chmod 644 "$work/1k"

# nginx_conf NAME BODY: writes $work/NAME.conf, an nginx config with the
# shared preamble (1 worker, no access log, temp paths in $work).
nginx_conf() {
	cat > "$work/$1.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/$1.pid;
error_log $work/$1.err warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/tmp-$1-body;
	proxy_temp_path $work/tmp-$1-proxy;
	fastcgi_temp_path $work/tmp-$1-fastcgi;
	uwsgi_temp_path $work/tmp-$1-uwsgi;
	scgi_temp_path $work/tmp-$1-scgi;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
$2
}
EOF
}

# start_nginx NAME CPU: sets SPAWNED (master) and NGINX_PIDS (master and
# workers).
start_nginx() {
	local i w
	spawn "$1" "$2" nginx -p "$work" -c "$work/$1.conf" -e "$work/$1.err"
	for i in $(seq 50); do
		w=$(children_of "$SPAWNED")
		[ -n "$w" ] && break
		sleep 0.1
	done
	NGINX_PIDS="$SPAWNED $w"
}

# no sendfile: with h2, nginx then writes DATA after HEADERS in a second
# small segment that Nagle holds until the client's delayed ACK (a 40 ms
# stall per response at low rates, ~4 ms at p50 at 1000 req/s)
nginx_conf origin "
	open_file_cache max=16;
	server {
		listen 127.0.0.1:$O_H1;
		listen 127.0.0.1:$O_H2 http2;
		root $work;
		location / { }
	}"
start_nginx origin "$cpu_origin"
ORIGIN_PIDS=$NGINX_PIDS
wait_port $O_H1 && wait_port $O_H2 || die "origin nginx did not start: $(cat "$work/origin.log" "$work/origin.err" 2>/dev/null)"

# ---------------------------------------------------------------------------
# Contenders. Each start function is called as c_X_start PROTO and sets:
#   ENTRY      the port loadgen talks to (h1: HTTP/1.1, h2: h2c)
#   HOP1 HOP2  the PIDs making up proxy 1 and proxy 2 ("" for no proxy)
#   PATHNOTE   what each hop speaks, for the report
#   AUTHORITY  optional: the Host / :authority loadgen sends (default: ENTRY's address)
#   AUX        optional: PIDs of helper processes (the meshd controller),
#              pinned to the load CPU, counted neither in the proxies' CPU
#              nor in the foreign CPU
# c_X_avail prints why X cannot run and returns 1, or returns 0; c_X_protos,
# when defined, prints the protocols X runs for (the others are skipped).
# ---------------------------------------------------------------------------
CONTENDER_TABLE=(
#	"name     description"
	"direct   no proxy: loadgen -> origin"
	"haproxy  HAProxy pair (nbthread 1 each, http mode, keep-alive, http-reuse always)"
	"haproxy-h2link  HAProxy pair with h2c between the two proxies (h1 only; informational)"
	"nginx    nginx pair (worker_processes 1 each, upstream keepalive)"
	"meshd    meshd pair as deployed (meshd controller; client sidecar resolves the service name -> server sidecar inbound)"
	"meshd-static  meshd pair without a controller (explicit mode, IP authority; optional)"
)
# run only when named in --contenders
OPTIONAL=" meshd-static "
LEFT_OUT=()

c_direct_avail() { return 0; }
c_direct_start() {
	HOP1="" HOP2=""
	if [ "$1" = h1 ]; then
		ENTRY=$O_H1 PATHNOTE="HTTP/1.1 to the origin"
	else
		ENTRY=$O_H2 PATHNOTE="h2c to the origin"
	fi
}

c_haproxy_avail() { command -v haproxy >/dev/null || { echo "haproxy not installed"; return 1; }; }
# haproxy_conf NAME H1PORT H2PORT NEXT_H1 NEXT_H2
haproxy_conf() {
	cat > "$work/$1.cfg" <<EOF
global
	nbthread 1
	maxconn 4000
defaults
	mode http
	timeout connect 5s
	timeout client 300s
	timeout server 300s
	timeout http-keep-alive 300s
	option http-keep-alive
	http-reuse always
frontend fe_h1
	bind 127.0.0.1:$2
	default_backend be_h1
backend be_h1
	server next 127.0.0.1:$4
frontend fe_h2
	bind 127.0.0.1:$3 proto h2
	default_backend be_h2
backend be_h2
	server next 127.0.0.1:$5 proto h2
EOF
}
c_haproxy_start() {
	haproxy_conf haproxy2 15441 15442 $O_H1 $O_H2
	haproxy_conf haproxy1 15001 15002 15441 15442
	spawn haproxy2 "$cpu_proxy" haproxy -db -f "$work/haproxy2.cfg"
	HOP2=$SPAWNED
	spawn haproxy1 "$cpu_proxy" haproxy -db -f "$work/haproxy1.cfg"
	HOP1=$SPAWNED
	if [ "$1" = h1 ]; then
		ENTRY=15001 PATHNOTE="HTTP/1.1 on every hop"
		wait_port 15441 && wait_port 15001
	else
		ENTRY=15002 PATHNOTE="h2c on every hop (proto h2 on bind and server lines)"
		wait_port 15442 && wait_port 15002
	fi
}

# The HAProxy pair with h2c between the two proxies only: HTTP/1.1 from
# loadgen and to the origin. HAProxy's equivalent of meshd's HTTP/1.1 over
# the h2 link between its proxies (informational: the targets stay against
# the plain pair). h1 only: for h2 the plain pair already speaks h2c on
# every hop.
# haproxy_link_conf NAME BIND BIND_OPTS SERVER SERVER_OPTS
haproxy_link_conf() {
	cat > "$work/$1.cfg" <<EOF
global
	nbthread 1
	maxconn 4000
defaults
	mode http
	timeout connect 5s
	timeout client 300s
	timeout server 300s
	timeout http-keep-alive 300s
	option http-keep-alive
	http-reuse always
frontend fe
	bind 127.0.0.1:$2 $3
	default_backend be
backend be
	server next 127.0.0.1:$4 $5
EOF
}
c_haproxy-h2link_avail() { c_haproxy_avail; }
c_haproxy-h2link_protos() { echo h1; }
c_haproxy-h2link_start() {
	haproxy_link_conf haproxy-h2link2 15443 "proto h2" $O_H1 ""
	haproxy_link_conf haproxy-h2link1 15003 "" 15443 "proto h2"
	spawn haproxy-h2link2 "$cpu_proxy" haproxy -db -f "$work/haproxy-h2link2.cfg"
	HOP2=$SPAWNED
	spawn haproxy-h2link1 "$cpu_proxy" haproxy -db -f "$work/haproxy-h2link1.cfg"
	HOP1=$SPAWNED
	ENTRY=15003
	PATHNOTE="HTTP/1.1 into proxy 1, h2c between the proxies (proto h2 on proxy 1's server line and proxy 2's bind line), HTTP/1.1 to the origin"
	wait_port 15443 && wait_port 15003
}

c_nginx_avail() { command -v nginx >/dev/null || { echo "nginx not installed"; return 1; }; }
c_nginx_start() {
	nginx_conf nginx2 "
	upstream next { server 127.0.0.1:$O_H1; keepalive 128; keepalive_requests 1000000; }
	server {
		listen 127.0.0.1:15451;
		location / {
			proxy_pass http://next;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
		}
	}"
	nginx_conf nginx1 "
	upstream next { server 127.0.0.1:15451; keepalive 128; keepalive_requests 1000000; }
	server {
		listen 127.0.0.1:15011;
		listen 127.0.0.1:15012 http2;
		location / {
			proxy_pass http://next;
			proxy_http_version 1.1;
			proxy_set_header Connection \"\";
		}
	}"
	start_nginx nginx2 "$cpu_proxy"
	HOP2=$NGINX_PIDS
	start_nginx nginx1 "$cpu_proxy"
	HOP1=$NGINX_PIDS
	if [ "$1" = h1 ]; then
		ENTRY=15011 PATHNOTE="HTTP/1.1 on every hop"
	else
		ENTRY=15012
		PATHNOTE="h2c into proxy 1, then HTTP/1.1 (nginx proxy_pass cannot speak h2 upstream)"
	fi
	wait_port 15451 && wait_port "$ENTRY"
}

# The meshd pair as deployed: loadgen -> meshd 1 (the client's sidecar,
# outbound listener, explicit mode, --destination-addr: resolves the
# request's authority through the controller) -> meshd 2 (the server's
# sidecar, inbound listener, --inbound-forward to the origin) -> origin.
# `meshd controller --roles registry,destination` (on the load CPU, its CPU
# time in neither the proxies' figures nor the foreign CPU) serves a
# registry of one service, MESHD_SVC (port 8080, target_port 15461), whose
# single workload is meshd 2's inbound address, `meshed: true`: its
# endpoint 127.0.0.1:15461 carries the H2 protocol hint, so HTTP/1.1 from
# loadgen rides h2c streams between the proxies (meshd-orig-proto), as in a
# mesh. loadgen sends the service's name as the authority (--authority), as
# an application names the service it calls to its sidecar.
MESHD_SVC=origin.bench:8080
meshd_avail() {
	[ -x "$meshd_bin" ] || { echo "no meshd binary at $meshd_bin (make -s -j2 FLAVOR=musl all)"; return 1; }
	command -v setpriv >/dev/null || { echo "setpriv not installed (Debian: util-linux)"; return 1; }
	# a private copy: a rebuild of build/meshd during the run changes nothing
	cp "$meshd_bin" "$work/meshd" && chmod 755 "$work/meshd" || { echo "cannot copy $meshd_bin"; return 1; }
	"$work/meshd" proxy --help >/dev/null 2>&1 || { echo "$meshd_bin has no working 'proxy' command"; return 1; }
	return 0
}
c_meshd_avail() {
	meshd_avail || return 1
	"$work/meshd" controller --help >/dev/null 2>&1 || { echo "$meshd_bin has no working 'controller' command"; return 1; }
	return 0
}

# meshd_ready PORT: up to 5 s for 200 on the admin server's /ready.
meshd_ready() {
	local i
	for i in $(seq 50); do
		nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 &&
			printf 'GET /ready HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3 &&
			head -c 12 <&3" 2>/dev/null | grep -q ' 200' && return 0
		sleep 0.1
	done
	return 1
}

# meshd_pair PROTO [PROXY1 FLAGS...]: starts meshd 2 (inbound listener
# 15461 forwarding to the origin's PROTO port, admin 15473) and meshd 1
# (outbound listener 15460, admin 15463, plus FLAGS), both as the meshd uid
# on the proxy CPU; sets HOP1, HOP2, ENTRY.
meshd_pair() {
	local fwd=$O_H1
	local -a as=(setpriv --reuid="$meshd_uid" --regid="$meshd_uid" --clear-groups)
	[ "$1" = h2 ] && fwd=$O_H2
	shift
	spawn meshd2 "$cpu_proxy" "${as[@]}" "$work/meshd" proxy --mode explicit \
		--inbound-addr 127.0.0.1:15461 --inbound-forward 127.0.0.1:$fwd \
		--outbound-addr 127.0.0.1:15472 --admin-addr 127.0.0.1:15473
	HOP2=$SPAWNED
	spawn meshd1 "$cpu_proxy" "${as[@]}" "$work/meshd" proxy --mode explicit \
		--outbound-addr 127.0.0.1:15460 --inbound-addr 127.0.0.1:15462 \
		--admin-addr 127.0.0.1:15463 "$@"
	HOP1=$SPAWNED
	ENTRY=15460
}

c_meshd_start() {
	local i h2=""
	[ "$1" = h2 ] && h2=--h2
	cat > "$work/registry.yaml" <<EOF
# the bench's registry: one service, its one workload is meshd 2's inbound
# listener (a meshed workload: its endpoint gets the h2 protocol hint)
services:
  - name: ${MESHD_SVC%%.*}
    namespace: bench
    ports: [{port: ${MESHD_SVC##*:}, target_port: 15461}]
    selector: {app: origin}
workloads:
  - name: origin-1
    namespace: bench
    addresses: [127.0.0.1]
    labels: {app: origin}
    meshed: true
EOF
	chmod 644 "$work/registry.yaml"
	spawn meshd-controller "$cpu_load" "$work/meshd" controller --roles registry,destination \
		--registry "$work/registry.yaml" --destination-addr 127.0.0.1:15480 \
		--admin-addr 127.0.0.1:15481
	AUX=$SPAWNED
	meshd_ready 15481 || return 1
	meshd_pair "$1" --destination-addr 127.0.0.1:15480
	AUTHORITY=$MESHD_SVC
	if [ "$1" = h1 ]; then
		PATHNOTE="HTTP/1.1 from loadgen to meshd 1's outbound listener (15460) with Host $MESHD_SVC; meshd 1 resolves it through the controller to meshd 2's inbound listener (127.0.0.1:15461, a meshed workload: h2 protocol hint), so the request rides an h2c stream between the proxies (meshd-orig-proto: HTTP/1.1); HTTP/1.1 from meshd 2 to the origin"
	else
		PATHNOTE="h2c on every hop; loadgen -> meshd 1 outbound (15460) with :authority $MESHD_SVC, resolved through the controller to meshd 2's inbound listener (127.0.0.1:15461)"
	fi
	meshd_ready 15473 && meshd_ready 15463 || return 1
	# the first request to the name waits for the controller's answer: warm
	# up until the whole path answers 2xx (up to 5 s), so that no measured
	# request pays the resolution
	for i in $(seq 25); do
		timeout 10 ip netns exec "$NS" "$LG" --url "http://127.0.0.1:$ENTRY/1k" $h2 \
			--authority "$AUTHORITY" --closed --connections 1 --duration 0.1 --warmup 0 \
			--json > "$work/resolve.json" 2> "$work/resolve.err" &&
			[ "$(bad_count "$work/resolve.json")" = 0 ] && break
		sleep 0.2
	done
	[ "$(bad_count "$work/resolve.json")" = 0 ] || { cat "$work/resolve.json" "$work/resolve.err" >&2; return 1; }
	meshd_baseline
}

# The previous set-up, kept as an optional contender: no controller, meshd 2's
# inbound address as the authority (an IP literal: meshd 1 routes to it as
# is, with no protocol hint), so HTTP/1.1 stays HTTP/1.1 between the proxies.
c_meshd-static_avail() { meshd_avail; }
c_meshd-static_start() {
	meshd_pair "$1"
	AUTHORITY=127.0.0.1:15461
	if [ "$1" = h1 ]; then
		PATHNOTE="HTTP/1.1 on every hop (no controller, no protocol hint); loadgen -> meshd 1 outbound (15460) with Host 127.0.0.1:15461, which meshd 1 routes to meshd 2's inbound listener"
	else
		PATHNOTE="h2c on every hop (meshd keeps the protocol; no controller); loadgen -> meshd 1 outbound (15460) with :authority 127.0.0.1:15461, which meshd 1 routes to meshd 2's inbound listener"
	fi
	meshd_ready 15473 && meshd_ready 15463 || return 1
	meshd_baseline
}

# meshd_responses PORT DIRECTION: the sum of response_total for DIRECTION
# on the admin server at PORT.
meshd_responses() {
	nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 &&
		printf 'GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3 &&
		cat <&3" 2>/dev/null |
	awk -v d="direction=\"$2\"" '/^response_total\{/ && index($0, d) { s += $NF } END { printf "%d\n", s }'
}
# meshd_baseline: what both proxies answered before the path check (the
# warm-up requests of the meshd contender), which c_meshd_check subtracts.
meshd_baseline() {
	sleep 0.1
	MESHD_BASE1=$(meshd_responses 15463 outbound)
	MESHD_BASE2=$(meshd_responses 15473 inbound)
}
# c_meshd_check COMPLETED SENT: after the path check (loadgen sent SENT
# requests and got COMPLETED responses): each proxy answered at least
# COMPLETED and at most SENT since the baseline (requests still in flight
# when loadgen stopped may be answered or not), so the requests did cross
# meshd 1 and meshd 2.
c_meshd_check() {
	local a b
	a=$(meshd_responses 15463 outbound); b=$(meshd_responses 15473 inbound)
	[ -n "$a" ] && a=$((a - ${MESHD_BASE1:-0}))
	[ -n "$b" ] && b=$((b - ${MESHD_BASE2:-0}))
	[ -n "$a" ] && [ -n "$b" ] && [ "$a" -ge "$1" ] && [ "$a" -le "$2" ] &&
		[ "$b" -ge "$1" ] && [ "$b" -le "$2" ] && return 0
	echo "loadgen sent $2 requests and got $1 responses; meshd 1 outbound answered ${a:-?}, meshd 2 inbound ${b:-?}"
	return 1
}
c_meshd-static_check() { c_meshd_check "$@"; }
# c_meshd_after PROTO: appended to the path note after the last run, while
# the pair still runs: how many connections meshd 2's inbound listener
# accepted (an h2 link between the proxies: one or two; HTTP/1.1: about one
# per request in flight), so the report says what the link really spoke.
c_meshd_after() {
	local n
	n=$(nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/15473 &&
		printf 'GET /metrics HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n' >&3 &&
		cat <&3" 2>/dev/null |
		awk '/^tcp_open_total\{/ && index($0, "direction=\"inbound\",peer=\"src\"") { s += $NF } END { printf "%d", s }')
	echo " (measured: meshd 2's inbound listener accepted ${n:-?} connection(s) from meshd 1 since its start, warm-up and path check included; loadgen opened up to $rss_conns at once)"
}
c_meshd-static_after() { c_meshd_after "$@"; }

# ---------------------------------------------------------------------------
# Measurements
# ---------------------------------------------------------------------------
declare -A R          # R[contender|proto|metric|round] = value
declare -A CMDS       # exact loadgen command lines, first seen order in CMD_ORDER
CMD_ORDER=()
declare -A NOTES      # NOTES[contender|proto] = path note
RUNLOG=()             # per-run lines for the report

# jval FILE KEY: a top-level (or errors.*) number from loadgen's JSON.
jval() { sed -n "s/.*[{,]\"$2\":\([-0-9.]*\).*/\1/p" "$1"; }
# jlat FILE: "p50 p90 p99 p999 max" of latency_us.
jlat() {
	sed -n 's/.*"latency_us":{"p50":\([0-9]*\),"p90":\([0-9]*\),"p99":\([0-9]*\),"p999":\([0-9]*\),"max":\([0-9]*\).*/\1 \2 \3 \4 \5/p' "$1"
}

# run_loadgen KEY DURATION WARMUP ARGS...: runs loadgen in the namespace on
# the load CPU; leaves its JSON in $work/KEY.json, the foreign CPU seconds
# in FOREIGN and the wall time in WALL. Returns loadgen's status.
run_loadgen() {
	local key=$1 d=$2 w=$3 rc t0 t1 b0 b1 o0 o1 lg_cpu ours all busy cmd
	shift 3
	cmd="loadgen $* --duration $d --warmup $w --cpu $cpu_load --json"
	if [ -z "${CMDS[$cmd]:-}" ]; then CMDS[$cmd]=1; CMD_ORDER+=("$cmd"); fi
	b0=($(busy_ticks)); o0=$(cpu_ticks $ORIGIN_PIDS $HOP1 $HOP2 $AUX); t0=$EPOCHREALTIME
	timeout $(awk -v d="$d" -v w="$w" 'BEGIN{printf "%d", d + w + 60}') \
		ip netns exec "$NS" "$LG" "$@" --duration "$d" --warmup "$w" --cpu "$cpu_load" --json \
		> "$work/$key.json" 2> "$work/$key.err"
	rc=$?
	t1=$EPOCHREALTIME; b1=($(busy_ticks)); o1=$(cpu_ticks $ORIGIN_PIDS $HOP1 $HOP2 $AUX)
	lg_cpu=$(awk -v u="$(jval "$work/$key.json" cpu_user_s)" -v s="$(jval "$work/$key.json" cpu_sys_s)" \
		'BEGIN{printf "%.3f", u + s}')
	# foreign = all busy CPU time - (origin + proxies + AUX + loadgen)
	FOREIGN=$(awk -v b=$((b1[0] - b0[0])) -v o=$((o1 - o0)) -v l="$lg_cpu" -v hz="$clk_tck" \
		'BEGIN{f = (b - o) / hz - l; if (f < 0) f = 0; printf "%.2f", f}')
	WALL=$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b - a}')
	echo "{\"bench\":\"$key\",\"foreign_cpu_s\":$FOREIGN,\"wall_s\":$WALL,\"loadgen\":$(cat "$work/$key.json" 2>/dev/null || echo null)}" \
		>> "$out_dir/raw.jsonl"
	return $rc
}

# bad_count FILE: errors_total + non_2xx of a loadgen JSON result; 1 when
# the result is missing or unreadable (a crashed run is not a clean one).
bad_count() {
	local e n
	e=$(jval "$1" errors_total 2>/dev/null); n=$(jval "$1" non_2xx 2>/dev/null)
	[ -n "$e" ] && [ -n "$n" ] && echo $((e + n)) || echo 1
}
# err_note FILE: "errors E, non-2xx N" for the run log.
err_note() {
	echo "errors $(jval "$1" errors_total 2>/dev/null || true), non-2xx $(jval "$1" non_2xx 2>/dev/null || true)"
}

# cpu_us_per_req TICKS REQUESTS: microseconds of CPU per request.
cpu_us_per_req() {
	awk -v t="$1" -v n="$2" -v hz="$clk_tck" 'BEGIN{ if (n > 0) printf "%.1f", t / hz * 1e6 / n }'
}

# log_run ROUND CONTENDER PROTO WHAT RESULT
log_run() {
	local pct
	pct=$(awk -v f="$FOREIGN" -v w="$WALL" -v n="$ncpu" 'BEGIN{ if (w > 0) printf "%.1f", f / (w * n) * 100 }')
	RUNLOG+=("| $1 | $2 | $3 | $4 | $5 | $WALL | $FOREIGN | $pct |")
	say "round $1 $2 $3 $4: $5 (foreign CPU ${FOREIGN}s = ${pct}%)"
}

# measure ROUND CONTENDER PROTO
measure() {
	local r=$1 c=$2 p=$3 k="$2|$3" key flags lat c1 c2 c1b c2b n rc errs samp stop m1 m2 why
	local n0=${#started[@]}
	local -a a
	CUR=$c
	say "round $r: $c $p: starting"
	AUTHORITY="" AUX=""
	"c_${c}_start" "$p"
	rc=$?
	# what this contender spawned; stopped (and forgotten) when done
	OURS=("${started[@]:$n0}")
	if [ $rc != 0 ]; then
		say "$c $p: did not start: $(cat "$work"/*.log 2>/dev/null | tail -n 5)"
		RUNLOG+=("| $r | $c | $p | start | FAILED | | | |")
		R[$k|failed|$r]=1
		stop_contender
		return
	fi
	NOTES[$k]=$PATHNOTE
	url="http://127.0.0.1:$ENTRY/1k"
	[ "$p" = h2 ] && flags="--h2" || flags=""
	[ -n "$AUTHORITY" ] && flags="$flags --authority $AUTHORITY"
	sleep 0.5
	if [ -n "$HOP1" ]; then
		R[$k|rss_idle1|$r]=$(rss_kib $HOP1)
		R[$k|rss_idle2|$r]=$(rss_kib $HOP2)
	fi
	# smoke: the whole path answers 2xx
	if ! timeout 20 ip netns exec "$NS" "$LG" --url "$url" $flags --closed --connections 1 \
		--duration 0.3 --warmup 0 --json > "$work/smoke.json" 2> "$work/smoke.err" ||
	   [ "$(bad_count "$work/smoke.json")" != 0 ]; then
		say "$c $p: path check failed: $(cat "$work/smoke.err") $(cat "$work/smoke.json")"
		RUNLOG+=("| $r | $c | $p | path check | FAILED | | | |")
		R[$k|failed|$r]=1
		stop_contender
		return
	fi
	# c_X_check COMPLETED SENT, when X has one: did the requests take the
	# intended path?
	if declare -F "c_${c}_check" >/dev/null &&
	   ! why=$("c_${c}_check" "$(jval "$work/smoke.json" all_completed)" "$(jval "$work/smoke.json" sent)"); then
		say "$c $p: path check failed: $why"
		RUNLOG+=("| $r | $c | $p | path check | FAILED: $why | | | |")
		R[$k|failed|$r]=1
		stop_contender
		return
	fi

	# (a)+(b) saturation
	key=r$r-$c-$p-sat
	c1=$(cpu_ticks $HOP1); c2=$(cpu_ticks $HOP2)
	if [ "$p" = h1 ]; then a=(--connections $sat_conns_h1); else a=(--connections $sat_conns_h2 --streams $sat_streams_h2); fi
	run_loadgen "$key" "$d_sat" "$w_sat" --url "$url" $flags --closed "${a[@]}"
	rc=$?
	c1b=$(cpu_ticks $HOP1); c2b=$(cpu_ticks $HOP2)
	n=$(jval "$work/$key.json" all_completed)
	errs=$(err_note "$work/$key.json")
	R[$k|sat_rps|$r]=$(jval "$work/$key.json" achieved_rps)
	R[$k|sat_err|$r]=$(bad_count "$work/$key.json")
	if [ -n "$HOP1" ] && [ -n "$n" ]; then
		R[$k|sat_cpu1|$r]=$(cpu_us_per_req $((c1b - c1)) "$n")
		R[$k|sat_cpu2|$r]=$(cpu_us_per_req $((c2b - c2)) "$n")
		# how busy the proxy core was: near 100 % = the pair is the bottleneck
		R[$k|sat_core|$r]=$(awk -v t=$((c1b - c1 + c2b - c2)) -v hz="$clk_tck" -v w="$WALL" \
			'BEGIN{ if (w > 0) printf "%.0f", t / hz / w * 100 }')
	fi
	log_run "$r" "$c" "$p" "saturation" "${R[$k|sat_rps|$r]:-?} req/s, $errs, rc $rc"

	# (b)+(c) 1000 req/s
	key=r$r-$c-$p-lat
	c1=$(cpu_ticks $HOP1); c2=$(cpu_ticks $HOP2)
	s1=$(ctx_switches $HOP1); s2=$(ctx_switches $HOP2)
	if [ "$p" = h1 ]; then a=(--connections $lat_conns_h1); else a=(--connections $lat_conns_h2 --streams $lat_streams_h2); fi
	run_loadgen "$key" "$d_lat" "$w_lat" --url "$url" $flags --rate $lat_rate "${a[@]}"
	rc=$?
	c1b=$(cpu_ticks $HOP1); c2b=$(cpu_ticks $HOP2)
	s1b=$(ctx_switches $HOP1); s2b=$(ctx_switches $HOP2)
	n=$(jval "$work/$key.json" all_completed)
	lat=($(jlat "$work/$key.json"))
	errs=$(err_note "$work/$key.json")
	R[$k|p50|$r]=${lat[0]:-}
	R[$k|p99|$r]=${lat[2]:-}
	R[$k|p999|$r]=${lat[3]:-}
	R[$k|lat_rps|$r]=$(jval "$work/$key.json" achieved_rps)
	R[$k|lat_err|$r]=$(bad_count "$work/$key.json")
	if [ -n "$HOP1" ] && [ -n "$n" ]; then
		R[$k|lat_cpu1|$r]=$(cpu_us_per_req $((c1b - c1)) "$n")
		R[$k|lat_cpu2|$r]=$(cpu_us_per_req $((c2b - c2)) "$n")
		R[$k|lat_cs1|$r]=$(awk -v d=$((s1b - s1)) -v n="$n" 'BEGIN{ if (n > 0) printf "%.2f", d / n }')
		R[$k|lat_cs2|$r]=$(awk -v d=$((s2b - s2)) -v n="$n" 'BEGIN{ if (n > 0) printf "%.2f", d / n }')
	fi
	log_run "$r" "$c" "$p" "$lat_rate req/s" "p50 ${lat[0]:-?} us, p99 ${lat[2]:-?} us, achieved ${R[$k|lat_rps|$r]:-?}, $errs"

	# (d) RSS under 1000 req/s over 100 connections (proxies only)
	if [ -n "$HOP1" ]; then
		key=r$r-$c-$p-rss
		stop=$work/rss.stop
		rm -f "$stop"
		(
			m1=0 m2=0
			while [ ! -e "$stop" ]; do
				v=$(rss_kib $HOP1); [ "$v" -gt $m1 ] && m1=$v
				v=$(rss_kib $HOP2); [ "$v" -gt $m2 ] && m2=$v
				sleep 0.2
			done
			echo "$m1 $m2" > "$work/rss.max"
		) &
		samp=$!
		if [ "$p" = h1 ]; then a=(--connections $rss_conns); else a=(--connections $rss_conns --streams $rss_streams_h2); fi
		run_loadgen "$key" "$d_rss" "$w_rss" --url "$url" $flags --rate $lat_rate "${a[@]}"
		touch "$stop"
		wait $samp
		m1=0 m2=0
		read -r m1 m2 < "$work/rss.max"
		R[$k|rss_load1|$r]=$m1
		R[$k|rss_load2|$r]=$m2
		R[$k|rss_err|$r]=$(bad_count "$work/$key.json")
		log_run "$r" "$c" "$p" "RSS, $lat_rate req/s x $rss_conns conns" \
			"proxy1 $(mib "$m1") MiB, proxy2 $(mib "$m2") MiB, $(err_note "$work/$key.json")"
	fi
	if declare -F "c_${c}_after" >/dev/null; then NOTES[$k]+=$("c_${c}_after" "$p"); fi
	stop_contender
}

# stop_contender: stops what the contender's start function spawned (OURS;
# for nginx the masters, which take their workers down), forgets it, and
# calls c_<CUR>_stop when the contender has one.
stop_contender() {
	local -a keep_started=()
	local s x drop
	[ ${#OURS[@]} -gt 0 ] && stop_pids "${OURS[@]}"
	if declare -F "c_${CUR}_stop" >/dev/null; then "c_${CUR}_stop"; fi
	[ ${#OURS[@]} -gt 0 ] || return 0
	for s in "${started[@]}"; do
		drop=0
		for x in "${OURS[@]}"; do [ "$s" = "$x" ] && drop=1; done
		[ $drop = 0 ] && keep_started+=("$s")
	done
	started=("${keep_started[@]}")
	OURS=()
}

# ---------------------------------------------------------------------------
# Statistics and report
# ---------------------------------------------------------------------------
mib() { [ -z "$1" ] && { echo "–"; return; }; awk -v v="$1" 'BEGIN{printf "%.1f", v / 1024}'; }

# tables: the two Markdown tables, computed by one awk pass over R (one
# fork instead of hundreds: forks are slow on a loaded machine).
tables() {
	local key
	for key in "${!R[@]}"; do printf '%s|%s\n' "$key" "${R[$key]}"; done |
	awk -F'|' -v rounds="$rounds" -v protos="$only_protos" -v cs="${contenders[*]}" \
		-v rate="$lat_rate" -v rssc="$rss_conns" -v skip="$SKIP" '
	{ v[$1, $2, $3, $4] = $5 }
	function sortn(a, n,   i, j, t) {
		for (i = 2; i <= n; i++) {
			t = a[i]
			for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]
			a[j + 1] = t
		}
	}
	function mid(a, n) {
		if (n == 0) return ""
		sortn(a, n)
		return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
	}
	# median over rounds
	function med(c, p, m,   r, n, a) {
		n = 0
		for (r = 1; r <= rounds; r++)
			if ((c, p, m, r) in v && v[c, p, m, r] != "") a[++n] = v[c, p, m, r] + 0
		return mid(a, n)
	}
	# median over rounds of (c - no proxy) in the same round
	function added(c, p, m,   r, n, a) {
		n = 0
		for (r = 1; r <= rounds; r++)
			if ((c, p, m, r) in v && (("direct", p, m, r) in v) &&
			    v[c, p, m, r] != "" && v["direct", p, m, r] != "")
				a[++n] = v[c, p, m, r] - v["direct", p, m, r]
		return mid(a, n)
	}
	# mean of the two proxies
	function pair(c, p, m,   x, y) {
		x = med(c, p, m "1"); y = med(c, p, m "2")
		return (x == "" || y == "") ? "" : (x + y) / 2
	}
	function f(fmt, x) { return x == "" ? "–" : sprintf(fmt, x) }
	# skipped: the contender does not run for this protocol (c_X_protos)
	function skipped(c, p) { return index(skip, " " c "|" p " ") > 0 }
	# ratio rows of the contenders matching re against ref, same protocol
	function ratios(ref, re,   i, j, c, p) {
		print "| contender | proto | sat req/s | CPU/req at sat | CPU/req at " rate "/s | added p50 | added p99 | RSS idle | RSS load |"
		print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= nc; i++) for (j = 1; j <= np; j++) {
			c = C[i]; p = P[j]
			if (c == "direct" || c == ref || c !~ re || skipped(c, p) || skipped(ref, p)) continue
			if (failing(c, p) || failing(ref, p)) {
				printf "| %s | %s | %s | | | | | | |\n", c, p,
					failing(c, p) ? "FAILING: not measured" : ref " FAILING: no reference"
				continue
			}
			printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", c, p,
				ratio(med(c, p, "sat_rps"), med(ref, p, "sat_rps")),
				ratio(pair(c, p, "sat_cpu"), pair(ref, p, "sat_cpu")),
				ratio(pair(c, p, "lat_cpu"), pair(ref, p, "lat_cpu")),
				ratio(added(c, p, "p50"), added(ref, p, "p50")),
				ratio(added(c, p, "p99"), added(ref, p, "p99")),
				ratio(pair(c, p, "rss_idle"), pair(ref, p, "rss_idle")),
				ratio(pair(c, p, "rss_load"), pair(ref, p, "rss_load"))
		}
	}
	function mb(x) { return x == "" ? "–" : sprintf("%.1f", x / 1024) }
	function ratio(a, b) { return (a == "" || b == "" || b == 0) ? "–" : sprintf("%.2f", a / b) }
	# failing: some run of the row had errors or non-2xx, or the
	# contender did not start / failed its path check
	function failing(c, p,   r) {
		for (r = 1; r <= rounds; r++)
			if (v[c, p, "lat_err", r] + 0 > 0 || v[c, p, "sat_err", r] + 0 > 0 ||
			    v[c, p, "rss_err", r] + 0 > 0 || v[c, p, "failed", r] + 0 > 0)
				return 1
		return 0
	}
	function short(c, p,   r) {
		for (r = 1; r <= rounds; r++)
			if ((c, p, "lat_rps", r) in v && v[c, p, "lat_rps", r] < 0.99 * rate) return 1
		return 0
	}
	function flag(c, p,   s) {
		s = failing(c, p) ? " (FAILING)" : ""
		return short(c, p) ? s " (rate < 99 %!)" : s
	}
	# peak of the two proxies, KiB
	function worst(c, p, m,   x, y) {
		x = med(c, p, m "1"); y = med(c, p, m "2")
		return (x == "" || y == "") ? "" : (x > y ? x : y)
	}
	# one row of the targets table: ratio or value against a bound; fail:
	# 1 = the meshd row is failing, 2 = the HAProxy row (the reference) is
	function target(p, what, val, shown, bound, le, fail) {
		if (fail == 1) { printf "| %s | %s | FAILING: not measured | no |\n", p, what; return }
		if (fail == 2) { printf "| %s | %s | HAProxy pair FAILING: no reference | – |\n", p, what; return }
		if (val == "") { printf "| %s | %s | not measured | – |\n", p, what; return }
		printf "| %s | %s | %s | %s |\n", p, what, shown,
			(le ? val <= bound : val >= bound) ? "**yes**" : "**no**"
	}
	END {
		nc = split(cs, C, " "); np = split(protos, P, " ")
		print "| contender | proto | sat req/s | proxy core busy | CPU µs/req at sat | CPU µs/req at " rate "/s | ctx sw/req at " rate "/s | p50 µs | p99 µs | added p50 µs | added p99 µs | RSS idle MiB | RSS load MiB |"
		print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
		for (i = 1; i <= nc; i++) for (j = 1; j <= np; j++) {
			c = C[i]; p = P[j]
			if (skipped(c, p)) continue
			if (c == "direct") {
				printf "| %s%s | %s | %s | – | – | – | – | %s | %s | 0 | 0 | – | – |\n", c, flag(c, p), p,
					f("%.0f", med(c, p, "sat_rps")), f("%.0f", med(c, p, "p50")), f("%.0f", med(c, p, "p99"))
				continue
			}
			printf "| %s%s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s | %s | %s | %s | %s / %s | %s / %s |\n",
				c, flag(c, p), p, f("%.0f", med(c, p, "sat_rps")), f("%.0f %%", med(c, p, "sat_core")),
				f("%.1f", med(c, p, "sat_cpu1")), f("%.1f", med(c, p, "sat_cpu2")),
				f("%.1f", med(c, p, "lat_cpu1")), f("%.1f", med(c, p, "lat_cpu2")),
				f("%.2f", med(c, p, "lat_cs1")), f("%.2f", med(c, p, "lat_cs2")),
				f("%.0f", med(c, p, "p50")), f("%.0f", med(c, p, "p99")),
				f("%.0f", added(c, p, "p50")), f("%.0f", added(c, p, "p99")),
				mb(med(c, p, "rss_idle1")), mb(med(c, p, "rss_idle2")),
				mb(med(c, p, "rss_load1")), mb(med(c, p, "rss_load2"))
		}
		print ""
		print "## Ratios against the HAProxy pair (same protocol; < 1 is better except for req/s)"
		print ""
		ratios("haproxy", ".")
		if (" " cs " " ~ / haproxy-h2link / && " " cs " " ~ / meshd(-static)? /) {
			print ""
			print "## meshd against the HAProxy pair with an h2c link (informational)"
			print ""
			print "HAProxy with h2c between its two proxies (HTTP/1.1 from loadgen and to the origin), the same multiplexing as meshd between its sidecars; h1 only. The targets stay against the plain HAProxy pair."
			print ""
			ratios("haproxy-h2link", "^meshd")
		}
		if (!(" " cs " " ~ / meshd /)) exit
		print ""
		print "## Targets of the meshd pair (issue 3)"
		print ""
		print "Throughput and CPU against the HAProxy pair of the same run and protocol (CPU: mean of the two proxies); RSS: the larger of the two proxies, in MB = 10^6 bytes (MiB above)."
		print ""
		print "| proto | target | measured | met |"
		print "|---|---|---|---|"
		for (j = 1; j <= np; j++) {
			p = P[j]; fl = failing("meshd", p) ? 1 : failing("haproxy", p) ? 2 : 0
			x = med("meshd", p, "sat_rps"); y = med("haproxy", p, "sat_rps")
			q = (x == "" || y == "" || y == 0) ? "" : x / y
			target(p, "throughput ≥ 1.25 × HAProxy", q, sprintf("%.3f × (%.0f vs %.0f req/s)", q, x, y), 1.25, 0, fl)
			x = pair("meshd", p, "sat_cpu"); y = pair("haproxy", p, "sat_cpu")
			q = (x == "" || y == "" || y == 0) ? "" : x / y
			target(p, "CPU/request at saturation ≤ 0.8 × HAProxy", q, sprintf("%.3f × (%.2f vs %.2f µs)", q, x, y), 0.8, 1, fl)
			x = pair("meshd", p, "lat_cpu"); y = pair("haproxy", p, "lat_cpu")
			q = (x == "" || y == "" || y == 0) ? "" : x / y
			target(p, "CPU/request at " rate "/s ≤ 0.8 × HAProxy", q, sprintf("%.3f × (%.2f vs %.2f µs)", q, x, y), 0.8, 1, fl)
			fl = failing("meshd", p)
			x = worst("meshd", p, "rss_idle"); q = (x == "") ? "" : x * 1024 / 1e6
			target(p, "idle RSS ≤ 2 MB per proxy", q, sprintf("%.2f MB", q), 2, 1, fl)
			x = worst("meshd", p, "rss_load"); q = (x == "") ? "" : x * 1024 / 1e6
			target(p, "RSS at " rate "/s × " rssc " connections ≤ 4 MB per proxy", q, sprintf("%.2f MB", q), 4, 1, fl)
		}
	}'
}

report() {
	local c p line
	echo "# meshd side-by-side benchmark"
	echo
	echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "- command: \`$cmdline\` (rounds $rounds; saturation ${d_sat}s + ${w_sat}s warm-up, latency ${d_lat}s + ${w_lat}s, RSS ${d_rss}s + ${w_rss}s)"
	echo "- machine: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $ncpu CPUs, kernel $(uname -r)"
	echo "- versions: $(haproxy -v 2>/dev/null | head -n1 | awk '{print "haproxy", $3}'), $(nginx -v 2>&1 | sed 's|.*nginx/|nginx |'), loadgen $(git describe --always --dirty 2>/dev/null || echo '?')"
	[ -x "$work/meshd" ] && echo "- meshd: $("$work/meshd" version 2>/dev/null | head -n1) (copied from ${meshd_bin#$top/} at the start, sha256 $(sha256sum "$work/meshd" | cut -c1-12)), both proxies as uid $meshd_uid"
	echo "- pinning: proxies on CPU $cpu_proxy; loadgen on CPU $cpu_load; origin (nginx, 1 worker, 1 KiB file) on CPU $cpu_origin"
	echo "- $quiet_note"
	for line in "${LEFT_OUT[@]}"; do echo "- $line"; done
	echo
	echo "## Medians across rounds"
	echo
	echo "Saturation: loadgen --closed (h1 $sat_conns_h1 connections; h2 $sat_conns_h2 connections x $sat_streams_h2 streams). \"proxy core busy\": CPU time of both proxies over the run's wall time; near 100 % the pair's core is the bottleneck, well below it the load generator and origin (sharing the other core) are."
	echo "Latency: open loop at $lat_rate req/s, from the intended send time (h1 $lat_conns_h1 connections; h2 $lat_conns_h2 x $lat_streams_h2 streams); \"added\" = median over rounds of (pair − no proxy) in the same round."
	echo "CPU: µs of CPU per request per proxy (proxy 1 / proxy 2); at $lat_rate req/s, µs per request ÷ 1000 = vCPU per 1000 req/s. \"ctx sw/req\": context switches (voluntary + involuntary) per request per proxy in the $lat_rate req/s run: 2 means each request woke the proxy twice (once for the request, once for the response), the floor of an event-loop proxy when requests do not overlap."
	echo "RSS: MiB per proxy (proxy 1 / proxy 2; nginx = master + worker), idle after start, and the peak at $lat_rate req/s over $rss_conns connections."
	echo "\"(FAILING)\": some run of that row had loadgen errors or non-2xx responses, or the contender did not start or failed its path check: its figures are not a measurement; \"(rate < 99 %!)\": the $lat_rate req/s run fell short of its rate."
	echo
	tables
	echo
	echo "## What each hop speaks"
	echo
	for c in "${contenders[@]}"; do
		for p in $only_protos; do
			[ -n "${NOTES[$c|$p]:-}" ] && echo "- $c, $p: ${NOTES[$c|$p]}"
		done
	done
	echo
	echo "## Every run, with the CPU time other processes used meanwhile"
	echo
	echo "Foreign CPU = machine-wide busy CPU time − (origin + proxies + loadgen), and its share of all $ncpu CPUs over the run."
	echo
	echo "| round | contender | proto | measurement | result | wall s | foreign CPU s | foreign % |"
	echo "|---|---|---|---|---|---:|---:|---:|"
	printf '%s\n' "${RUNLOG[@]}"
	echo
	echo "## Exact loadgen commands (run in the namespace; the URL is the contender's entry port)"
	echo
	for line in "${CMD_ORDER[@]}"; do echo "- \`$line\`"; done
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
contenders=()
for row in "${CONTENDER_TABLE[@]}"; do
	set -- $row
	name=$1
	if [ -n "$only_contenders" ]; then
		[[ " $only_contenders " == *" $name "* ]] || continue
	elif [[ "$OPTIONAL" == *" $name "* ]]; then
		continue
	fi
	if why=$("c_${name}_avail"); then
		contenders+=("$name")
	else
		LEFT_OUT+=("$name: left out, $why")
	fi
done
[[ " ${contenders[*]} " == *" direct "* ]] || die "the direct (no proxy) baseline is required"
for line in "${LEFT_OUT[@]}"; do say "$line"; done
: > "$out_dir/raw.jsonl"

quiet_check
say "contenders: ${contenders[*]}; protocols: $only_protos; $rounds round(s)"
# SKIP: " contender|proto ..." pairs a contender does not run (c_X_protos)
SKIP=" "
for c in "${contenders[@]}"; do
	declare -F "c_${c}_protos" >/dev/null || continue
	for p in $only_protos; do
		[[ " $("c_${c}_protos") " == *" $p "* ]] || SKIP+="$c|$p "
	done
done
for r in $(seq "$rounds"); do
	for c in "${contenders[@]}"; do
		for p in $only_protos; do
			[[ "$SKIP" == *" $c|$p "* ]] && continue
			measure "$r" "$c" "$p"
		done
	done
done
report > "$out_dir/results.md"
cat "$out_dir/results.md"
say "report written to ${out_dir#$top/}/results.md (raw loadgen JSON: ${out_dir#$top/}/raw.jsonl)"
