#!/usr/bin/env bash
# meshd init: the traffic redirection, installed for real in network namespaces this test
# creates (never in the machine's own), for each backend: iptables-nft, iptables-legacy, nft.
#
# Topology (build-facts §5.1): an "app" namespace (10.200.0.2, fd00:200::2) and a "peer"
# namespace (10.200.0.1 and 10.200.0.3, fd00:200::1 and fd00:200::3) joined by a veth pair.
# In the app namespace a python listener plays the proxy: on 4140 and 4143 it answers with the
# SO_ORIGINAL_DST it read, so a reply "app listen=4140 orig=10.200.0.1:8080" proves that a
# connection to 10.200.0.1:8080 was redirected to the outbound port. The same listener also
# sits on the ports that must NOT be redirected (4190, 4191, 8050, 80), and the peer answers
# "peer listen=PORT" on its own ports, so every "not redirected" check sees a positive reply.
# Everything is bounded: clients time out after 5 s, listeners exit after 30 s idle, meshd
# runs under a 20 s timeout; the EXIT trap kills the listeners it started and deletes the
# namespaces.
. "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
	echo "ok 1 - meshd init e2e # SKIP needs root (network namespaces)"
	exit 0
fi
# Flags also come from MESHD_<FLAG>: none of the caller's may leak into these checks.
unset MESHD_BACKEND MESHD_NETNS MESHD_INBOUND_PORT MESHD_OUTPUT_PORT MESHD_ADMIN_PORT \
	MESHD_CONTROL_PORT MESHD_PROXY_UID MESHD_INBOUND_PORTS MESHD_SKIP_INBOUND_PORTS \
	MESHD_SKIP_OUTBOUND_PORTS MESHD_SKIP_SUBNETS MESHD_IPV6 MESHD_HOST MESHD_DRY_RUN \
	MESHD_UNINSTALL
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)

tmp=$(mktemp -d /tmp/meshd-init.XXXXXX)
chmod 755 "$tmp"
pids=()
nss=()
cleanup() {
	local p ns
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
	for ns in "${nss[@]}"; do ip netns del "$ns" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A copy every user can run (the unprivileged checks run meshd as uid 1000).
cp "$MESHD_BIN" "$tmp/meshd"
chmod 755 "$tmp/meshd"
mi() { timeout 20 "$MESHD_BIN" init "$@"; }

cat > "$tmp/listener.py" <<'EOF'
# listener.py NAME READYFILE PORT...: answers "NAME listen=PORT orig=ADDR:PORT" and closes.
import select, socket, struct, sys
name, ready, ports = sys.argv[1], sys.argv[2], [int(p) for p in sys.argv[3:]]
socks = []
for p in ports:
    for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((addr, p))
        s.listen(16)
        socks.append(s)
with open(ready, "w") as f:
    f.write("ready\n")
while True:
    r, _, _ = select.select(socks, [], [], 30)
    if not r:
        break  # idle for 30 s: the test is over or gone
    for s in r:
        c, _ = s.accept()
        try:
            if s.family == socket.AF_INET:
                raw = c.getsockopt(socket.SOL_IP, 80, 16)  # SO_ORIGINAL_DST
                port, ip = struct.unpack("!2xH4s8x", raw)
                orig = "%s:%d" % (socket.inet_ntop(socket.AF_INET, ip), port)
            else:
                raw = c.getsockopt(socket.IPPROTO_IPV6, 80, 28)  # IP6T_SO_ORIGINAL_DST
                port = struct.unpack("!H", raw[2:4])[0]
                orig = "[%s]:%d" % (socket.inet_ntop(socket.AF_INET6, raw[8:24]), port)
        except Exception as e:
            orig = "none(%s)" % e.__class__.__name__
        try:
            c.sendall(("%s listen=%d orig=%s\n" % (name, c.getsockname()[1], orig)).encode())
        except OSError:
            pass
        c.close()
EOF
cat > "$tmp/client.py" <<'EOF'
# client.py HOST PORT [SOURCE]: prints what the server says, or "error ...".
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
s.settimeout(3)
try:
    if len(sys.argv) > 3:
        s.bind((sys.argv[3], 0))
    s.connect((host, port))
    data = b""
    while True:
        d = s.recv(256)
        if not d:
            break
        data += d
    sys.stdout.write(data.decode())
except OSError as e:
    print("error %s" % e.__class__.__name__)
    sys.exit(1)
EOF

# topo TAG: fresh app ($A) and peer ($P) namespaces joined by a veth pair.
topo() {
	A=meshd-init-$$-$1-a
	P=meshd-init-$$-$1-p
	ip netns add "$A" && nss+=("$A")
	ip netns add "$P" && nss+=("$P")
	ip link add veth-a netns "$A" type veth peer name veth-p netns "$P"
	ip -n "$A" addr add 10.200.0.2/24 dev veth-a
	ip -n "$A" -6 addr add fd00:200::2/64 dev veth-a nodad
	ip -n "$P" addr add 10.200.0.1/24 dev veth-p
	ip -n "$P" -6 addr add fd00:200::1/64 dev veth-p nodad
	ip -n "$P" addr add 10.200.0.3/24 dev veth-p
	ip -n "$P" -6 addr add fd00:200::3/64 dev veth-p nodad
	ip -n "$A" link set lo up
	ip -n "$P" link set lo up
	ip -n "$A" link set veth-a up
	ip -n "$P" link set veth-p up
}

# listen NS NAME PORT...: starts a listener and waits (at most 5 s) until it is bound.
listen() {
	local ns=$1 name=$2 ready=$tmp/ready.$1 i
	shift 2
	rm -f "$ready"
	ip netns exec "$ns" "$PY" "$tmp/listener.py" "$name" "$ready" "$@" >/dev/null 2>&1 &
	pids+=($!)
	for i in $(seq 50); do
		[ -s "$ready" ] && return 0
		sleep 0.1
	done
	echo "# listener $name in $ns did not start"
	return 1
}

# app_to HOST PORT [SRC]: connects from the app namespace as uid ${U:-1000}.
app_to() {
	local u=${U:-1000}
	ip netns exec "$A" setpriv --reuid "$u" --regid "$u" --clear-groups \
		timeout 5 "$PY" "$tmp/client.py" "$@"
}
# peer_to HOST PORT [SRC]: connects from the peer namespace, by default from its first
# address (the kernel could otherwise pick the skipped one, .3 or ::3, as the source).
peer_to() {
	local src=${3:-10.200.0.1}
	case $1 in *:*) src=${3:-fd00:200::1} ;; esac
	ip netns exec "$P" timeout 5 "$PY" "$tmp/client.py" "$1" "$2" "$src"
}

# snap NS BACKEND: the namespace's ruleset as the backend's own tools print it (generation
# comments and packet counters removed), plus the nft view of everything.
snap() {
	case $2 in
	iptables-*)
		ip netns exec "$1" "iptables-${2#iptables-}-save"
		ip netns exec "$1" "ip6tables-${2#iptables-}-save" ;;
	esac 2>&1 | grep -v '^#' | sed 's/\[[0-9]*:[0-9]*\]/[c]/'
	# (iptables-nft's ip6 REDIRECT shows as "XT target REDIRECT not found": cosmetic)
	ip netns exec "$1" nft list ruleset 2>&1
}

# foreign NS BACKEND: rules that are not meshd's and must survive install and uninstall.
foreign() {
	local t
	case $2 in
	iptables-*)
		for t in iptables ip6tables; do
			ip netns exec "$1" "$t-${2#iptables-}" -t nat -A PREROUTING -p udp --dport 5353 -j RETURN
			ip netns exec "$1" "$t-${2#iptables-}" -t nat -A OUTPUT -p udp --dport 5353 -j RETURN
			ip netns exec "$1" "$t-${2#iptables-}" -A INPUT -p udp --dport 5353 -j ACCEPT
		done ;;
	nft)
		ip netns exec "$1" nft -f - <<-'EOF'
		table inet other {
			chain out {
				type nat hook output priority -100; policy accept;
				udp dport 5353 return
			}
		}
		EOF
		;;
	esac
}

same() { # same NAME FILE1 FILE2
	local d
	d=$(diff "$2" "$3" 2>&1)
	e2e_report $? "$1" "$d"
}

FLAGS=(--skip-outbound-ports 9000,9100-9200 --skip-inbound-ports 8000-8100
       --skip-subnets 10.200.0.3/32,fd00:200::3/128)

# ---- every backend, end to end ------------------------------------------------------------
for B in iptables-nft iptables-legacy nft; do
	topo "$B"
	foreign "$A" "$B"
	snap "$A" "$B" > "$tmp/before"
	check "$B: the foreign rules are in place" grep -q 'dport 5353' "$tmp/before"

	check_out "$B: --dry-run prints the rules" 'MESHD_INBOUND|table inet meshd' \
		mi --netns "$A" --backend "$B" --dry-run "${FLAGS[@]}"
	snap "$A" "$B" > "$tmp/dry"
	same "$B: --dry-run changes nothing" "$tmp/before" "$tmp/dry"

	check "$B: install" mi --netns "$A" --backend "$B" "${FLAGS[@]}"
	snap "$A" "$B" > "$tmp/one"
	case $B in
	iptables-*)
		for fam in iptables ip6tables; do
			ip netns exec "$A" "$fam-${B#iptables-}-save" -t nat > "$tmp/nat"
			check "$B: $fam has the inbound redirect" \
				grep -qx -- '-A MESHD_INBOUND -p tcp -j REDIRECT --to-ports 4143' "$tmp/nat"
			check "$B: $fam skips the proxy uid" \
				grep -qx -- '-A MESHD_OUTPUT -m owner --uid-owner 2102 -j RETURN' "$tmp/nat"
			check "$B: $fam jumps from PREROUTING and OUTPUT once" bash -c \
				"[ \$(grep -cx -- '-A PREROUTING -j MESHD_INBOUND' $tmp/nat) = 1 ] &&
				 [ \$(grep -cx -- '-A OUTPUT -j MESHD_OUTPUT' $tmp/nat) = 1 ]"
			check "$B: $fam keeps the foreign rule" \
				grep -qx -- '-A OUTPUT -p udp -m udp --dport 5353 -j RETURN' "$tmp/nat"
		done
		check "$B: no nft table of meshd" bash -c "! grep -q 'table inet meshd' $tmp/one" ;;
	nft)
		check "$B: table inet meshd redirects to 4143" \
			grep -q 'meta l4proto tcp redirect to :4143' "$tmp/one"
		check "$B: skips the proxy uid" grep -q 'meta skuid 2102 return' "$tmp/one"
		check "$B: keeps the foreign table" grep -q 'table inet other' "$tmp/one" ;;
	esac

	check "$B: install again" mi --netns "$A" --backend "$B" "${FLAGS[@]}"
	snap "$A" "$B" > "$tmp/two"
	same "$B: a second install leaves the same ruleset" "$tmp/one" "$tmp/two"

	listen "$A" app 4140 4143 4190 4191 8050 80
	listen "$P" peer 8080 9000 9150
	check_out "$B: outbound v4 redirected to 4140" '^app listen=4140 orig=10\.200\.0\.1:8080$' \
		app_to 10.200.0.1 8080
	check_out "$B: outbound v6 redirected to 4140" '^app listen=4140 orig=\[fd00:200::1\]:8080$' \
		app_to fd00:200::1 8080
	check_out "$B: inbound v4 redirected to 4143" '^app listen=4143 orig=10\.200\.0\.2:80$' \
		peer_to 10.200.0.2 80
	check_out "$B: inbound v6 redirected to 4143" '^app listen=4143 orig=\[fd00:200::2\]:443$' \
		peer_to fd00:200::2 443
	U=2102 check_out "$B: uid 2102 v4 not redirected" '^peer listen=8080 ' app_to 10.200.0.1 8080
	U=2102 check_out "$B: uid 2102 v6 not redirected" '^peer listen=8080 ' app_to fd00:200::1 8080
	check_out "$B: admin port 4191 not redirected" '^app listen=4191 ' peer_to 10.200.0.2 4191
	check_out "$B: control port 4190 (v6) not redirected" '^app listen=4190 ' \
		peer_to fd00:200::2 4190
	check_out "$B: skipped inbound port not redirected" '^app listen=8050 ' \
		peer_to 10.200.0.2 8050
	check_out "$B: skipped outbound port not redirected" '^peer listen=9000 ' \
		app_to 10.200.0.1 9000
	check_out "$B: skipped outbound range (v6) not redirected" '^peer listen=9150 ' \
		app_to fd00:200::1 9150
	check_out "$B: skipped subnet outbound v4" '^peer listen=8080 ' app_to 10.200.0.3 8080
	check_out "$B: skipped subnet outbound v6" '^peer listen=8080 ' app_to fd00:200::3 8080
	check_out "$B: skipped subnet inbound v4" '^app listen=80 ' peer_to 10.200.0.2 80 10.200.0.3
	check_out "$B: skipped subnet inbound v6" '^app listen=80 ' \
		peer_to fd00:200::2 80 fd00:200::3
	check_out "$B: loopback output not redirected" '^app listen=4191 ' app_to 127.0.0.1 4191

	check_out "$B: uninstall" 'removed the redirect rules' \
		mi --netns "$A" --backend "$B" --uninstall
	snap "$A" "$B" > "$tmp/after"
	same "$B: uninstall restores the ruleset byte for byte" "$tmp/before" "$tmp/after"
	check_out "$B: outbound goes direct after uninstall" '^peer listen=8080 ' \
		app_to 10.200.0.1 8080
	check_out "$B: uninstall with nothing installed is a no-op" 'nothing to remove' \
		mi --netns "$A" --backend "$B" --uninstall
done

# ---- --ipv6=false --------------------------------------------------------------------------
topo v4
listen "$P" peer 8080
listen "$A" app 4140 4143
check "ipv6=false: install" mi --netns "$A" --ipv6=false
check "ipv6=false: IPv4 rules present" bash -c \
	"ip netns exec $A iptables-nft-save -t nat | grep -q MESHD_OUTPUT"
check "ipv6=false: no IPv6 rules" bash -c \
	"! ip netns exec $A ip6tables-nft-save | grep -q MESHD"
check_out "ipv6=false: outbound v4 redirected" '^app listen=4140 ' app_to 10.200.0.1 8080
check_out "ipv6=false: outbound v6 direct" '^peer listen=8080 ' app_to fd00:200::1 8080
check "ipv6=false: nft backend too" mi --netns "$A" --backend nft --ipv6=false
check_out "ipv6=false nft: outbound v6 direct" '^peer listen=8080 ' app_to fd00:200::1 8080

# ---- host mode -----------------------------------------------------------------------------
check_fails "host mode needs --inbound-ports" 2 mi --host --backend nft --dry-run
check_out "host mode: the message says why" 'host.*needs --inbound-ports' \
	mi --host --backend nft --dry-run
check_fails "host mode refuses the admin port in --inbound-ports" 2 \
	mi --host --inbound-ports 80,4191 --dry-run
for B in iptables-nft nft; do
	topo "host-$B"
	listen "$A" app 4140 4143 80 8050 22
	listen "$P" peer 8080
	check "host $B: install" mi --netns "$A" --backend "$B" --host --inbound-ports 80,443
	check_out "host $B: listed port redirected" '^app listen=4143 orig=10\.200\.0\.2:80$' \
		peer_to 10.200.0.2 80
	check_out "host $B: listed port (v6) redirected" '^app listen=4143 orig=\[fd00:200::2\]:80$' \
		peer_to fd00:200::2 80
	check_out "host $B: unlisted port (ssh) not redirected" '^app listen=22 ' \
		peer_to 10.200.0.2 22
	check_out "host $B: unlisted port not redirected" '^app listen=8050 ' \
		peer_to fd00:200::2 8050
	check_out "host $B: outbound redirected" '^app listen=4140 orig=10\.200\.0\.1:8080$' \
		app_to 10.200.0.1 8080
	check "host $B: uninstall" mi --netns "$A" --backend "$B" --uninstall
done

# ---- auto ----------------------------------------------------------------------------------
topo auto
check_out "auto picks iptables-nft in an empty namespace" 'using iptables-nft' \
	mi --netns "$A" --backend auto --dry-run
foreign "$A" iptables-legacy
check_out "auto picks iptables-legacy where legacy holds the rules" \
	'using iptables-legacy.*iptables-legacy-restore' \
	bash -c "timeout 20 $MESHD_BIN init --netns $A --backend auto --dry-run | tr '\n' ' '"
check "auto: install" mi --netns "$A" --backend auto
check "auto: the rules went to iptables-legacy" bash -c \
	"ip netns exec $A iptables-legacy-save -t nat | grep -q MESHD_INBOUND &&
	 ! ip netns exec $A iptables-nft-save | grep -q MESHD"
check "auto: uninstall removes them" mi --netns "$A" --backend auto --uninstall
check "auto: nothing of meshd is left" bash -c \
	"! ip netns exec $A iptables-legacy-save | grep -q MESHD"

# ---- a failure half way: IPv6 refused after IPv4 went in ------------------------------------
# A stand-in ip6tables-nft-restore that fails the way iptables-restore does ("line N failed").
mkdir -p "$tmp/fakebin"
printf '#!/bin/sh\ncat >/dev/null\necho "ip6tables-nft-restore: line 4 failed" >&2\nexit 1\n' \
	> "$tmp/fakebin/ip6tables-nft-restore"
chmod 755 "$tmp/fakebin/ip6tables-nft-restore"
topo half
check_fails "IPv6 refused: status 1" 1 env PATH="$tmp/fakebin:$PATH" timeout 20 "$MESHD_BIN" init --netns "$A"
check_out "IPv6 refused: names the tool and quotes the line" \
	'ip6tables-nft-restore failed \(exit status 1\).*line 4: "-A MESHD_INBOUND -p tcp -m multiport --dports 4190,4191 -j RETURN"' \
	env PATH="$tmp/fakebin:$PATH" timeout 20 "$MESHD_BIN" init --netns "$A"
check_out "IPv6 refused: the IPv4 rules were removed again" 'IPv4 rules were removed again' \
	env PATH="$tmp/fakebin:$PATH" timeout 20 "$MESHD_BIN" init --netns "$A"
check "IPv6 refused: nothing is left half-installed" bash -c \
	"! ip netns exec $A iptables-nft-save | grep -q MESHD"

# ---- errors --------------------------------------------------------------------------------
check_fails "unknown backend: status 2" 2 mi --backend pf --dry-run
check_out "unknown backend: named" 'unknown backend "pf"' mi --backend pf --dry-run
check_fails "bad port list: status 2" 2 mi --skip-inbound-ports 80-70 --dry-run
check_out "bad port list: named" 'bad port list "80-70"' mi --skip-inbound-ports 80-70 --dry-run
check_fails "bad CIDR: status 2" 2 mi --skip-subnets 10.0.0.0/33 --dry-run
check_out "bad CIDR: named" 'bad CIDR "10.0.0.0/33"' mi --skip-subnets 10.0.0.0/33 --dry-run
check_fails "stray argument: status 2" 2 mi extra
check_fails "unknown netns: status 1" 1 mi --netns "meshd-init-$$-nope"
check_out "unknown netns: named" "network namespace \"meshd-init-$$-nope\" not found" \
	mi --netns "meshd-init-$$-nope"
check_out "missing tool: says what to install" 'nft not found: install nftables' \
	env PATH=/nonexistent "$MESHD_BIN" init --netns "$A" --backend nft
check_out "missing iptables: says what to install" \
	'iptables-legacy-save not found: install iptables' \
	env PATH=/nonexistent "$MESHD_BIN" init --netns "$A" --backend iptables-legacy
for B in iptables-nft iptables-legacy nft; do
	check_fails "not root ($B): status 1" 1 ip netns exec "$A" \
		setpriv --reuid 1000 --regid 1000 --clear-groups timeout 20 "$tmp/meshd" init --backend "$B"
	check_out "not root ($B): needs NET_ADMIN" 'meshd init needs NET_ADMIN \(run as root\)' \
		ip netns exec "$A" setpriv --reuid 1000 --regid 1000 --clear-groups \
		timeout 20 "$tmp/meshd" init --backend "$B"
done
check_out "not root, --netns: needs NET_ADMIN" 'meshd init needs NET_ADMIN \(run as root\)' \
	setpriv --reuid 1000 --regid 1000 --clear-groups timeout 20 "$tmp/meshd" init --netns "$A"
check_out "not root, --dry-run still previews" 'cannot read the current rules.*MESHD_OUTPUT' \
	bash -c "ip netns exec $A setpriv --reuid 1000 --regid 1000 --clear-groups \
		timeout 20 $tmp/meshd init --dry-run | tr '\n' ' '"
check "the machine's own namespace was never touched" bash -c \
	"! iptables-nft-save 2>/dev/null | grep -q MESHD && ! nft list tables 2>/dev/null | grep -q 'inet meshd'"
