# test/e2e/pods.sh: "pods" for end-to-end tests (sourced, after lib.sh).
#
# A pod is a network namespace with one veth ("eth0") plugged into a bridge
# ("br0") that lives in a "node" namespace of its own, so the machine's own
# namespace, interfaces and rules are never touched. Pods get an IPv4 address
# 10.A.B.C/24 and the IPv6 address fd00:A:B::C/64 derived from it, and may be
# meshed: `meshd init` (default backend) in the pod, `meshd proxy` running as
# uid 2102 in transparent mode, and the application as another uid.
#
#   pods_init [PREFIX]          once per test: names, scratch dir, EXIT trap
#   pod_create NAME IPV4        a pod (idempotent: repairs what is missing)
#   pod_mesh NAME [FLAGS...]    init + proxy (extra proxy flags), waits /ready
#   pod_run NAME [-u UID] [-o LOG] [--] CMD...   background process in the pod,
#                               its PID recorded (POD_LAST_PID) and killed at exit
#   pod_exec NAME [-u UID] [--] CMD...           the same in the foreground
#   pod_app NAME ROLE [ARGS...] abc-app ROLE as POD_APP_UID (log NAME.app.log)
#   pod_ns NAME, pod_ip NAME, pod_ip6 NAME, pod_proxy_pid NAME
#   pod_wait_http NAME URL [SECONDS]             until URL answers 2xx
#   pod_rss_kb PID              VmRSS of a process, in KiB
#   pod_kill PID                ends one recorded process (TERM, then KILL)
#   pods_cleanup                kills the recorded PIDs, deletes the namespaces
#   pods_leftovers PREFIX       namespaces and processes left with PREFIX
#
# Names: every namespace is "$POD_PREFIX-$$-NAME" (the node: "...-node"), so
# parallel tests never collide. A namespace whose name carries the prefix and
# the PID of a process that no longer exists is a leftover of a crashed run:
# pods_init deletes such names (it never kills anything, and says which
# processes, if any, still live in them).
#
# pod_create, pod_mesh and pod_run record state in shell variables: call them
# directly, never inside $(...) or a pipeline (a subshell would lose the PIDs
# to kill). pods_cleanup deletes every "$POD_PREFIX-$$-*" namespace anyway.
#
# Environment: MESHD_BIN (required), POD_APP_UID (1000), POD_PROXY_UID (2102,
# also what meshd init skips), POD_READY_S (15: seconds to wait for /ready),
# ABC_APP or MESHD_APP (abc-app; default build/examples/abc-app).
# Only PIDs that pod_run started are ever killed.

: "${MESHD_BIN:?}"
POD_APP_UID=${POD_APP_UID:-1000}
POD_PROXY_UID=${POD_PROXY_UID:-2102}
POD_READY_S=${POD_READY_S:-15}
POD_PIDS=()
POD_NAMES=()
POD_NODE=
POD_DIR=
POD_LAST_PID=
declare -A POD_IP4 POD_IP6 POD_PROXY

# pod_log MSG...: a TAP comment on stderr-free stdout.
pod_log() {
	echo "# pods: $*"
}

# pods_init [PREFIX]: sets the names, makes the scratch directory (readable by
# the proxy's and the app's users) with a copy of meshd in it, cleans the
# leftovers of crashed runs with the same prefix, and installs the EXIT trap.
pods_init() {
	local ns pid rest
	POD_PREFIX=${1:-${POD_PREFIX:-meshd-pod}}
	POD_NODE=$POD_PREFIX-$$-node
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in "$POD_PREFIX"-*) ;; *) continue ;; esac
		rest=${ns#"$POD_PREFIX"-}
		pid=${rest%%-*}
		case $pid in '' | *[!0-9]*) continue ;; esac
		[ "$pid" = $$ ] && continue
		kill -0 "$pid" 2>/dev/null && continue
		local left
		left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
		[ -n "$left" ] && pod_log "leftover $ns still has processes $left (not killed)"
		ip netns del "$ns" 2>/dev/null && pod_log "deleted leftover namespace $ns"
	done
	POD_DIR=$(mktemp -d "/tmp/$POD_PREFIX.XXXXXX")
	chmod 755 "$POD_DIR"
	cp "$MESHD_BIN" "$POD_DIR/meshd"
	chmod 755 "$POD_DIR/meshd"
	POD_MESHD=$POD_DIR/meshd
	local app=${ABC_APP:-${MESHD_APP:-${MESHD_TOP:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}/build/examples/abc-app}}
	POD_APP=
	if [ -x "$app" ]; then
		cp "$app" "$POD_DIR/abc-app"
		chmod 755 "$POD_DIR/abc-app"
		POD_APP=$POD_DIR/abc-app
	fi
	if [ -z "${POD_NO_TRAP:-}" ]; then
		trap pods_cleanup EXIT
		trap 'exit 1' INT TERM HUP
	fi
}

# pod_ns NAME: the namespace of pod NAME.
pod_ns() {
	echo "$POD_PREFIX-$$-$1"
}

# pod_ip NAME, pod_ip6 NAME: the pod's addresses (read from the namespace
# when pod_create ran in a subshell).
pod_ip() {
	[ -n "${POD_IP4[$1]:-}" ] && { echo "${POD_IP4[$1]}"; return; }
	ip -n "$(pod_ns "$1")" -4 -o addr show dev eth0 2>/dev/null |
		awk '{sub("/.*", "", $4); print $4; exit}'
}

pod_ip6() {
	[ -n "${POD_IP6[$1]:-}" ] && { echo "${POD_IP6[$1]}"; return; }
	ip -n "$(pod_ns "$1")" -6 -o addr show dev eth0 scope global 2>/dev/null |
		awk '{sub("/.*", "", $4); print $4; exit}'
}

# pod_proxy_pid NAME: the PID of the pod's proxy (empty when not meshed).
pod_proxy_pid() {
	echo "${POD_PROXY[$1]:-}"
}

# pods_node: the node namespace and its bridge (idempotent).
pods_node() {
	local node=$POD_NODE
	[ -e "/var/run/netns/$node" ] || ip netns add "$node" || return 1
	ip -n "$node" link set lo up
	if ! ip -n "$node" link show br0 >/dev/null 2>&1; then
		ip -n "$node" link add br0 type bridge stp_state 0 forward_delay 0 || return 1
	fi
	# no IPv6 duplicate address detection or router solicitations on the node
	ip netns exec "$node" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 >/dev/null 2>&1
	ip -n "$node" link set br0 up
}

# pod_create NAME IPV4: the pod's namespace, its veth on the bridge, its
# addresses and loopback. Safe to call again on the same pod: whatever is
# missing is created, what exists is kept.
pod_create() {
	local name=$1 ip4=$2 ns a b c port ip6
	ns=$(pod_ns "$name")
	case $ip4 in
	10.*.*.*) ;;
	*) echo "pod_create: $ip4 is not a 10.x address" >&2; return 1 ;;
	esac
	IFS=. read -r _ a b c <<<"$ip4"
	ip6=fd00:$a:$b::$c
	port=v-$name
	[ ${#port} -le 15 ] || { echo "pod_create: name $name too long" >&2; return 1; }
	pods_node || return 1
	if [ ! -e "/var/run/netns/$ns" ]; then
		ip netns add "$ns" || return 1
	fi
	case " ${POD_NAMES[*]} " in *" $name "*) ;; *) POD_NAMES+=("$name") ;; esac
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_dad=0 >/dev/null 2>&1
	ip -n "$ns" link set lo up
	if ! ip -n "$ns" link show eth0 >/dev/null 2>&1; then
		# a half-made pair from an interrupted call: remove the node side
		ip -n "$POD_NODE" link del "$port" >/dev/null 2>&1
		ip -n "$POD_NODE" link add "$port" type veth peer name eth0 netns "$ns" || return 1
	fi
	ip -n "$POD_NODE" link set "$port" master br0 up || return 1
	ip -n "$ns" addr replace "$ip4/24" dev eth0 || return 1
	ip -n "$ns" -6 addr replace "$ip6/64" dev eth0 nodad || return 1
	ip -n "$ns" link set eth0 up || return 1
	POD_IP4[$name]=$ip4
	POD_IP6[$name]=$ip6
}

# pod_run NAME [-u UID] [-o LOG] [--] CMD...: starts CMD in the pod, as UID
# (default: root) with no supplementary groups, output to LOG (default
# /dev/null). Sets POD_LAST_PID, which pods_cleanup kills. CMD runs exec'd
# through `ip netns exec` and setpriv, so the PID is CMD's own.
pod_run() {
	local name=$1 uid= log=/dev/null ns
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		-u) uid=$2; shift 2 ;;
		-o) log=$2; shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	ns=$(pod_ns "$name")
	if [ -n "$uid" ]; then
		ip netns exec "$ns" setpriv --reuid "$uid" --regid "$uid" --clear-groups \
			-- "$@" </dev/null >>"$log" 2>&1 &
	else
		ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
	fi
	POD_LAST_PID=$!
	POD_PIDS+=("$POD_LAST_PID")
}

# pod_exec NAME [-u UID] [--] CMD...: runs CMD in the pod and waits for it.
pod_exec() {
	local name=$1 uid= ns
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		-u) uid=$2; shift 2 ;;
		--) shift; break ;;
		*) break ;;
		esac
	done
	ns=$(pod_ns "$name")
	if [ -n "$uid" ]; then
		ip netns exec "$ns" setpriv --reuid "$uid" --regid "$uid" --clear-groups -- "$@"
	else
		ip netns exec "$ns" "$@"
	fi
}

# pod_app NAME ROLE [ARGS...]: runs abc-app ROLE in the pod as POD_APP_UID,
# output in $POD_DIR/NAME.app.log (PID in POD_LAST_PID). Returns 1 when
# abc-app is not built.
pod_app() {
	local name=$1
	shift
	[ -n "$POD_APP" ] || { echo "pod_app: abc-app is not built" >&2; return 1; }
	pod_run "$name" -u "$POD_APP_UID" -o "$POD_DIR/$name.app.log" -- "$POD_APP" "$@"
}

# pod_wait_http NAME URL [SECONDS]: polls URL from inside the pod (as root,
# so never redirected) until it answers 2xx. Returns 1 on timeout.
pod_wait_http() {
	local name=$1 url=$2 secs=${3:-10} i code
	for ((i = 0; i < secs * 10; i++)); do
		code=$(pod_exec "$name" curl -s -o /dev/null -m 1 -w '%{http_code}' "$url" 2>/dev/null)
		case $code in 2??) return 0 ;; esac
		sleep 0.1
	done
	return 1
}

# pod_mesh NAME [PROXY FLAGS...]: installs the redirect rules and starts the
# proxy (uid POD_PROXY_UID, transparent mode, log in $POD_DIR/NAME.proxy.log),
# then waits for its /ready. Returns 1 when a step fails.
pod_mesh() {
	local name=$1 ns out
	shift
	ns=$(pod_ns "$name")
	if ! out=$(ip netns exec "$ns" timeout 30 "$POD_MESHD" init --proxy-uid "$POD_PROXY_UID" 2>&1); then
		echo "pod_mesh $name: meshd init failed: $out" >&2
		return 1
	fi
	pod_run "$name" -u "$POD_PROXY_UID" -o "$POD_DIR/$name.proxy.log" -- \
		"$POD_MESHD" proxy --mode transparent "$@"
	POD_PROXY[$name]=$POD_LAST_PID
	if ! pod_wait_http "$name" "http://127.0.0.1:4191/ready" "$POD_READY_S"; then
		echo "pod_mesh $name: proxy not ready after ${POD_READY_S}s; its log:" >&2
		tail -n 20 "$POD_DIR/$name.proxy.log" >&2
		return 1
	fi
}

# pod_rss_kb PID: the resident set size of PID in KiB (empty if gone).
pod_rss_kb() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null
}

# pod_kill PID: ends PID if pod_run started it: TERM, up to 3 s, then KILL.
pod_kill() {
	local pid=$1 p i known=0
	for p in "${POD_PIDS[@]}"; do [ "$p" = "$pid" ] && known=1; done
	[ $known = 1 ] || { echo "pod_kill: $pid was not started by pod_run" >&2; return 1; }
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 30; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 0
}

# pods_cleanup: kills every recorded PID (TERM, then KILL after 3 s), then
# deletes this test's pod and node namespaces and the scratch directory.
# Processes it did not start are left alone (and reported).
pods_cleanup() {
	local p i alive ns left
	for p in "${POD_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for ((i = 0; i < 30; i++)); do
		alive=0
		for p in "${POD_PIDS[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ $alive = 0 ] && break
		sleep 0.1
	done
	for p in "${POD_PIDS[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${POD_PIDS[@]}"; do wait "$p" 2>/dev/null; done
	POD_PIDS=()
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in "$POD_PREFIX-$$-"*) ;; *) continue ;; esac
		left=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
		[ -n "$left" ] && pod_log "processes not started here still in $ns: $left"
		ip netns del "$ns" 2>/dev/null
	done
	POD_NAMES=()
	[ -n "$POD_DIR" ] && rm -rf "$POD_DIR"
	POD_DIR=
}

# pods_leftovers PREFIX: prints namespaces named PREFIX-* and the processes in
# them; prints nothing when none is left.
pods_leftovers() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
		case $ns in "$1"-*) ;; *) continue ;; esac
		echo "namespace $ns pids: $(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')"
	done
}

# Run directly (test/run.sh does, as for every test/e2e/*.sh), this file tests
# itself: leftovers of a crashed run are removed, two pods reach each other
# over IPv4 and IPv6 through the bridge, pod_create repairs a pod, pod_kill
# and pods_cleanup end exactly what was started, and nothing is left behind.
# With a working `meshd proxy`, a meshed pod serves through its proxy.
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	. "$(dirname "$0")/lib.sh"
	if [ "$(id -u)" != 0 ]; then
		echo "ok 1 - pods # SKIP needs root (network namespaces)"
		exit 0
	fi
	PY=/usr/bin/python3
	POD_NO_TRAP=1
	fake=meshd-podtest-2147480000-node
	ip netns add "$fake"
	pods_init meshd-podtest
	trap pods_cleanup EXIT
	trap 'exit 1' INT TERM HUP
	check "a crashed run's namespace is deleted" bash -c "! ip netns list | grep -qw $fake"
	pod_create p1 10.231.0.2; e2e_report $? "pod p1 created"
	pod_create p2 10.231.0.3; e2e_report $? "pod p2 created"
	pod_run p2 -u "$POD_APP_UID" -o "$POD_DIR/http.log" -- \
		timeout 120 "$PY" -m http.server --bind :: 8000 --directory "$POD_DIR"
	srv=$POD_LAST_PID
	echo hello > "$POD_DIR/hello.txt"
	chmod 644 "$POD_DIR/hello.txt"
	check "p2 serves" pod_wait_http p2 "http://127.0.0.1:8000/hello.txt" 10
	check_out "p1 reaches p2 over IPv4" '^hello$' \
		pod_exec p1 curl -sS -m 5 "http://$(pod_ip p2):8000/hello.txt"
	check_out "p1 reaches p2 over IPv6" '^hello$' \
		pod_exec p1 curl -sS -m 5 "http://[$(pod_ip6 p2)]:8000/hello.txt"
	check_out "the pod runs as the app's uid" "^$POD_APP_UID\$" \
		bash -c "awk '/^Uid:/ {print \$2}' /proc/$srv/status"
	check "the machine's namespace has no pod interface" \
		bash -c "! ip link show | grep -Eq 'v-p1|br0'"
	ip -n "$(pod_ns p1)" link del eth0
	pod_create p1 10.231.0.2; e2e_report $? "pod_create again repairs a pod"
	check_out "repaired pod reaches p2" '^hello$' \
		pod_exec p1 curl -sS -m 5 "http://$(pod_ip p2):8000/hello.txt"
	check "pod_kill ends a recorded process" bash -c "$(declare -f pod_kill); \
		POD_PIDS=($srv); pod_kill $srv; ! kill -0 $srv 2>/dev/null"
	pod_kill "$srv"
	check_fails "pod_kill refuses a PID it did not start" 1 pod_kill $$
	if "$MESHD_BIN" proxy --help >/dev/null 2>&1; then
		pod_run p2 -u "$POD_APP_UID" -o "$POD_DIR/http.log" -- \
			timeout 120 "$PY" -m http.server --bind :: 8000 --directory "$POD_DIR"
		pod_mesh p2; e2e_report $? "p2 meshed (meshd init, meshd proxy as uid $POD_PROXY_UID)"
		if [ -n "$POD_APP" ]; then
			pod_app p2 b --listen :8090 --rate 0 --report 0
			check "abc-app b runs in p2" pod_wait_http p2 http://127.0.0.1:8090/ok 10
			check_out "p1 reaches abc-app in meshed p2" '^ok$' \
				pod_exec p1 curl -sS -m 5 "http://$(pod_ip p2):8090/ok"
		fi
		check_out "the proxy runs as uid $POD_PROXY_UID" "^$POD_PROXY_UID\$" \
			bash -c "awk '/^Uid:/ {print \$2}' /proc/$(pod_proxy_pid p2)/status"
		check_out "p1 reaches meshed p2" '^hello$' \
			pod_exec p1 curl -sS -m 5 "http://$(pod_ip p2):8000/hello.txt"
		check_out "p2's proxy counted the inbound request" \
			'request_total\{[^}]*direction="inbound"' \
			pod_exec p2 curl -sS -m 5 http://127.0.0.1:4191/metrics
	else
		echo "ok $((e2e_n += 1)) - meshed pod # SKIP meshd proxy not built yet"
	fi
	pids=("${POD_PIDS[@]}")
	prefix=$POD_PREFIX-$$
	pods_cleanup
	check "cleanup deleted every namespace" test -z "$(pods_leftovers "$prefix")"
	check "cleanup ended every recorded process" bash -c \
		"for p in ${pids[*]}; do kill -0 \$p 2>/dev/null && exit 1; done; exit 0"
fi
