# test/e2e/lib.sh: helpers for end-to-end tests (sourced).
# A test is a bash script printing TAP lines through these helpers:
#   check NAME CMD...            ok when CMD exits 0
#   check_fails NAME CODE CMD... ok when CMD exits with status CODE
#   check_out NAME PATTERN CMD...  ok when CMD's stdout+stderr matches the extended regex PATTERN
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
