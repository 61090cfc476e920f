#!/usr/bin/env bash
# test/bench/propagation.sh: discovery benchmark (issue 4). How long an
# endpoint change in the file registry takes to reach the traffic of a
# proxy, and the memory of the controller and the proxy at that size.
# ./build.sh bench runs it after test/bench/run.sh; alone (as root):
#
#   test/bench/propagation.sh                 json, yaml, json-small, dir; 100 changes each
#   test/bench/propagation.sh --configs "json dir" --changes 20
#
# Options: --configs "json yaml json-small dir dir-json" (a subset, in that
# order);
# --changes N (default 100); --spacing MS (pause after each change is seen,
# default 300); --budget S (stop a config's changes after S seconds, default
# 75: bounds the run on a loaded machine); --registry-interval DUR (passed to the controller; default:
# the controller's own, 250ms); --out DIR (default build/bench); --keep
# (keep the work directory with registries and logs).
# CPUs: BENCH_CPU_CONTROLLER (default 1), BENCH_CPU_PROXY (proxy, origin and
# the polling client, default 0). MESHD_BIN (default build/meshd; copied at
# the start).
#
# Set-up, per config (fresh controller and proxy each time):
#   json        1,000 services x 10 endpoints (10,000 workloads, one address
#               each), registry.json
#   yaml        the same, registry.yaml
#   json-small  100 services x 10 endpoints, JSON: the same path with a
#               registry a tenth the size (separates the size-bound part)
#   dir         the json/yaml content as a directory (registry.d/) of 1,000
#               YAML files, one per service with its 10 workloads; a change
#               rewrites that one file (hidden temporary, then rename)
#   dir-json    the same with JSON files
# meshd controller --registry FILE (or DIR), meshd proxy --mode explicit resolving
# through it; one nginx (1 worker) on 0.0.0.0:18090 answers every endpoint
# address (127.1.x.y, 127.2.x.y: all of 127/8 is loopback) with
# "$server_addr", so the answer names the endpoint that served it.
# The driver (propagation/driver.py) resolves 100 services through the proxy
# (one request each), samples VmRSS / VmHWM of both processes, then makes
# N changes, spaced: each replaces one resolved service's endpoint set by
# one new address (whole file, or the service's fragment, rewritten to a
# hidden temporary name, then renamed over it) and polls that service through the proxy (keep-alive,
# requests back to back) until the new address answers. Propagation = that
# answer - the instant before rename(2). The controller's log (generation
# parsed; Destination applied, debug) splits it.
#
# Everything runs in one network namespace (lo only) created here and
# deleted on exit, with every process started in it. Output: a Markdown
# report on stdout and in build/bench/propagation.md, the raw per-change
# samples in build/bench/propagation-CONFIG.json. Bounded: about 50 s per
# config at 100 changes on a quiet machine, at most --budget + 25 s (each
# driver run is killed after --budget + 40 s).
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
cmdline="test/bench/propagation.sh${*:+ $*}"

t_start=$EPOCHREALTIME
die() { echo "propagation: $*" >&2; exit 1; }
say() {
	local t=${EPOCHREALTIME/./} s=${t_start/./}
	printf 'propagation [%4ds]: %s\n' $(( (t - s) / 1000000 )) "$*" >&2
}

configs="json yaml json-small dir"
changes=100
spacing=300
budget=75
interval=""
out_dir=$top/build/bench
keep=0
cpu_ctl=${BENCH_CPU_CONTROLLER:-1}
cpu_px=${BENCH_CPU_PROXY:-0}
meshd_src=${MESHD_BIN:-$top/build/meshd}
PY=/usr/bin/python3
DRIVER=$top/test/bench/propagation/driver.py
O_PORT=18090
C_DST=18086 C_ADM=18096 P_OUT=18140 P_IN=18143 P_ADM=18191

usage() { sed -n '2,/^set /p' "$0" | sed -e '/^set /d' -e 's/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
	case $1 in
	--configs) configs=${2:?--configs LIST}; shift ;;
	--changes) changes=${2:?--changes N}; shift ;;
	--spacing) spacing=${2:?--spacing MS}; shift ;;
	--budget) budget=${2:?--budget S}; shift ;;
	--registry-interval) interval=${2:?--registry-interval DUR}; shift ;;
	--out) out_dir=${2:?--out DIR}; shift ;;
	--keep) keep=1 ;;
	-h|--help) usage; exit 0 ;;
	*) die "unknown option $1 (see --help)" ;;
	esac
	shift
done
case $changes in ''|*[!0-9]*|0) die "--changes wants a positive integer" ;; esac
case $spacing in ''|*[!0-9]*) die "--spacing wants milliseconds" ;; esac
case $budget in ''|*[!0-9]*|0) die "--budget wants seconds" ;; esac
for c in $configs; do
	case $c in json|yaml|json-small|dir|dir-json) ;; *) die "unknown config $c (json yaml json-small dir dir-json)" ;; esac
done

[ "$(id -u)" = 0 ] || die "needs root (it creates a network namespace)"
for t in ip taskset nginx; do
	command -v $t >/dev/null 2>&1 || die "missing $t (Debian: iproute2 util-linux nginx-light)"
done
[ -x "$PY" ] || die "missing $PY"
[ -x "$meshd_src" ] || die "no $meshd_src (run ./build.sh first)"
ncpu=$(nproc)
for c in $cpu_ctl $cpu_px; do
	[ "$c" -lt "$ncpu" ] || die "CPU $c does not exist (BENCH_CPU_* settings)"
done
mkdir -p "$out_dir"

NS=meshd-prop-$$
work=$(mktemp -d /tmp/meshd-prop.XXXXXX)
chmod 755 "$work"
cp "$meshd_src" "$work/meshd"
MESHD=$work/meshd
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

# forget PID...: drops stopped PIDs from the cleanup list.
forget() {
	local p q keep_=()
	for p in "${started[@]}"; do
		for q in "$@"; do [ "$p" = "$q" ] && continue 2; done
		keep_+=("$p")
	done
	started=("${keep_[@]}")
}

# wait_port PORT: up to 10 s for a listener in the namespace.
wait_port() {
	local i
	for i in $(seq 100); do
		nsx bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# busy_pct: machine-wide busy % over one second.
busy_pct() {
	local a b
	a=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat))
	sleep 1
	b=($(awk '/^cpu /{print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat))
	echo $(( (b[0] - a[0]) * 100 / (b[1] - a[1] > 0 ? b[1] - a[1] : 1) ))
}

# ---------------------------------------------------------------------------
# Origin: nginx, 1 worker, answers "$server_addr" on every 127/8 address
# ---------------------------------------------------------------------------
cat > "$work/origin.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/origin.pid;
error_log $work/origin.err warn;
worker_rlimit_nofile 8192;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $work/tmp-body;
	proxy_temp_path $work/tmp-proxy;
	fastcgi_temp_path $work/tmp-fastcgi;
	uwsgi_temp_path $work/tmp-uwsgi;
	scgi_temp_path $work/tmp-scgi;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
	default_type text/plain;
	server {
		listen $O_PORT;
		location / { return 200 "\$server_addr\n"; }
	}
}
EOF
spawn origin "$cpu_px" nginx -p "$work" -c "$work/origin.conf" -e "$work/origin.err"
wait_port $O_PORT || die "nginx did not start: $(cat "$work/origin.err" "$work/origin.log" 2>/dev/null)"
got=$(nsx bash -c "exec 3<>/dev/tcp/127.1.2.3/$O_PORT && printf 'GET / HTTP/1.0\r\n\r\n' >&3 && cat <&3" | tail -n1)
[ "$got" = 127.1.2.3 ] || die "origin check: 127.1.2.3 answered \"$got\""

quiet=$(busy_pct)
say "machine ${quiet}% busy before the start"

# ---------------------------------------------------------------------------
# One config
# ---------------------------------------------------------------------------
results=()
failed=0
run_config() {
	local cfg=$1 n ext label dir reg ctl px rc dump="" layout="--layout file" size
	case $cfg in
	json) n=1000 ext=json label="JSON" ;;
	yaml) n=1000 ext=yaml label="YAML" ;;
	json-small) n=100 ext=json label="JSON, 100 services (reference)" ;;
	dir) n=1000 ext=yaml label="directory, 1,000 YAML files" ;;
	dir-json) n=1000 ext=json label="directory, 1,000 JSON files" ;;
	esac
	dir=$work/$cfg
	mkdir -p "$dir"
	reg=$dir/registry.$ext
	case $cfg in dir*) reg=$dir/registry.d layout="--layout dir --format $ext" ;; esac
	[ $keep = 1 ] && dump="--metrics-dump $dir/proxy-metrics.txt"
	"$PY" "$DRIVER" gen --registry "$reg" $layout --services $n --endpoints 10 --port $O_PORT ||
		die "$cfg: cannot write the registry"
	size=$(du -sb "$reg" | cut -f1)
	spawn "$cfg-controller" "$cpu_ctl" "$MESHD" controller --registry "$reg" \
		--destination-addr 127.0.0.1:$C_DST --admin-addr 127.0.0.1:$C_ADM \
		--log-level info,controller.destination=debug ${interval:+--registry-interval "$interval"}
	ctl=$SPAWNED
	wait_port $C_DST || { cat "$work/$cfg-controller.log" >&2; die "$cfg: controller did not start"; }
	spawn "$cfg-proxy" "$cpu_px" "$MESHD" proxy --mode explicit \
		--outbound-addr 127.0.0.1:$P_OUT --inbound-addr 127.0.0.1:$P_IN \
		--admin-addr 127.0.0.1:$P_ADM --destination-addr 127.0.0.1:$C_DST
	px=$SPAWNED
	wait_port $P_OUT || { cat "$work/$cfg-proxy.log" >&2; die "$cfg: proxy did not start"; }
	say "$cfg: $n services x 10 endpoints ($size bytes); controller pid $ctl (CPU $cpu_ctl), proxy pid $px (CPU $cpu_px); $changes changes"
	timeout $((budget + 40)) ip netns exec "$NS" taskset -c "$cpu_px" "$PY" "$DRIVER" run \
		--registry "$reg" $layout --services $n --endpoints 10 --port $O_PORT \
		--proxy 127.0.0.1:$P_OUT --controller-pid "$ctl" --proxy-pid "$px" \
		--proxy-admin 127.0.0.1:$P_ADM $dump \
		--controller-log "$work/$cfg-controller.log" --label "$label" \
		--out "$out_dir/propagation-$cfg.json" --changes "$changes" \
		--spacing-ms "$spacing" --budget-s "$budget"
	rc=$?
	[ $rc = 0 ] || { failed=1; say "$cfg: driver exit status $rc (see the report's errors)"; }
	stop_pids "$ctl" "$px"
	forget "$ctl" "$px"
	[ -s "$out_dir/propagation-$cfg.json" ] && results+=("$out_dir/propagation-$cfg.json")
	[ $keep = 1 ] && cp "$work/$cfg-controller.log" "$work/$cfg-proxy.log" "$dir/" 2>/dev/null
	return 0
}

for c in $configs; do
	rm -f "$out_dir/propagation-$c.json"
	run_config "$c"
done
[ ${#results[@]} -gt 0 ] || die "no results"

{
	echo "## Discovery: registry change to proxy traffic ($(date -u +%Y-%m-%dT%H:%MZ))"
	echo
	echo "Command: \`$cmdline\`; $(nproc) CPUs, controller on CPU $cpu_ctl, proxy + origin + client on CPU $cpu_px;"
	echo "registry interval ${interval:-250ms (default)}; $changes changes per config, ${spacing} ms apart; machine ${quiet}% busy before the start."
	echo
	"$PY" "$DRIVER" report "${results[@]}"
} | tee "$out_dir/propagation.md"
say "done: $out_dir/propagation.md"
exit $failed
