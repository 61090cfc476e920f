# test/e2e/lib.sh: helpers for end-to-end tests (sourced).
# A test is a bash script printing TAP lines through these helpers:
#   check NAME CMD...            ok when CMD exits 0
#   check_fails NAME CODE CMD... ok when CMD exits with status CODE
#   check_out NAME PATTERN CMD...  ok when CMD's stdout+stderr matches the extended regex PATTERN
# and sets up what most of them share:
#   e2e_setup NAME               $tmp, the pids array, and the traps that end them
#   e2e_wait_port PORT [HOST]    waits for a TCP listener
# Nothing here kills processes it did not start.
: "${MESHD_BIN:?}"
e2e_n=0

e2e_report() {
	e2e_n=$((e2e_n + 1))
	if [ "$1" = 0 ]; then
		echo "ok $e2e_n - $2"
	else
		echo "not ok $e2e_n - $2"
		[ -n "${3:-}" ] && printf '%s\n' "$3" | head -n 20 | sed 's/^/#   /'
	fi
	return 0
}

check() {
	local name=$1 out rc
	shift
	out=$("$@" 2>&1); rc=$?
	e2e_report $rc "$name" "$out"
}

check_fails() {
	local name=$1 want=$2 out rc
	shift 2
	out=$("$@" 2>&1); rc=$?
	[ "$rc" = "$want" ] && rc=0 || { out="exit status $rc, wanted $want; $out"; rc=1; }
	e2e_report $rc "$name" "$out"
}

check_out() {
	local name=$1 pat=$2 out rc
	shift 2
	out=$("$@" 2>&1)
	printf '%s' "$out" | grep -Eq -- "$pat" && rc=0 || rc=1
	e2e_report $rc "$name" "output did not match /$pat/: $out"
}

# e2e_setup NAME: $tmp (a new directory /tmp/meshd-NAME.XXXXXX), an empty
# pids array, and traps that clean up on exit (also on INT and TERM): every
# PID in pids gets TERM, then KILL after 1 s, and $tmp is removed. Scripts
# record what they start with pids+=($!).
e2e_setup() {
	tmp=$(mktemp -d "/tmp/meshd-$1.XXXXXX") || exit 1
	pids=()
	trap e2e_cleanup EXIT
	trap 'exit 1' INT TERM
}

e2e_cleanup() {
	local p i
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${pids[@]}"; do
		for i in 1 2 3 4 5 6 7 8 9 10; do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}

# e2e_wait_port PORT [HOST]: up to 5 s for a TCP listener on HOST:PORT
# (HOST defaults to 127.0.0.1). Returns 0 once it accepts, else 1.
e2e_wait_port() {
	local i
	for i in $(seq 100); do
		(exec 3<>"/dev/tcp/${2:-127.0.0.1}/$1") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}
