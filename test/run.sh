#!/usr/bin/env bash
# test/run.sh: runs the unit tests and every end-to-end test, then prints one closing line
# "N passed, N failed". Called by ./build.sh test (which builds first and sets the binaries):
#   MESHD_BIN   the meshd binary under test
#   UNIT_BIN    the unit-test runner built from test/unit
# Arguments, if any, are substrings selecting e2e test files (e.g. test/run.sh cli).
# Every test prints TAP lines ("ok ..." / "not ok ..."); a test program that exits non-zero
# without having printed a failure counts as one failure.
set -uo pipefail
cd "$(dirname "$0")/.."
: "${MESHD_BIN:?set MESHD_BIN}" "${UNIT_BIN:?set UNIT_BIN}"
export MESHD_BIN UNIT_BIN
export MESHD_TOP=$(pwd)

passed=0
failed=0
logdir=$(mktemp -d /tmp/meshd-test.XXXXXX)

# run_one NAME CMD...: runs a test program, shows its output, adds up its ok/not ok lines.
run_one() {
	local name=$1 log rc p f
	shift
	log="$logdir/$(echo "$name" | tr '/ ' '__').log"
	echo "# --- $name"
	"$@" > "$log" 2>&1
	rc=$?
	cat "$log"
	p=$(grep -c '^ok ' "$log")
	f=$(grep -c '^not ok ' "$log")
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok - $name exited with status $rc"
		f=1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

if [ $# -eq 0 ]; then
	run_one unit "$UNIT_BIN"
fi
for t in test/e2e/*.sh; do
	[ "$t" = test/e2e/lib.sh ] && continue
	if [ $# -gt 0 ]; then
		sel=0
		for s in "$@"; do case $t in *"$s"*) sel=1 ;; esac; done
		[ $sel = 1 ] || continue
	fi
	run_one "$t" timeout 1200 bash "$t"
done
rm -rf "$logdir"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
