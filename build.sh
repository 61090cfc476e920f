#!/usr/bin/env bash
# build.sh: the one entry point of meshd.
#
#   ./build.sh                    build build/meshd (static, musl, stripped)
#   ./build.sh test               build, then run every test; ends with "N passed, N failed"
#   ./build.sh test --sanitize    the same tests on a glibc build with ASan + UBSan
#   ./build.sh fuzz [SECONDS]     build the libFuzzer targets and run each for SECONDS (default 60)
#   ./build.sh bench              side-by-side benchmarks (test/bench)
#   ./build.sh image              FROM scratch container image with podman (or docker)
#   ./build.sh clean              remove build/ (dependencies included)
#
# Run as root on a fresh Debian 12 or 13 machine it installs what is missing (and says what);
# as another user it lists the missing packages and stops.
set -euo pipefail
cd "$(dirname "$0")"
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

say() { echo "build.sh: $*" >&2; }
die() { echo "build.sh: $*" >&2; exit 1; }

# Debian packages each verb needs (beyond a base system).
pkgs_build="make gcc musl-tools dpkg-dev xz-utils file git ca-certificates"
pkgs_test="iproute2 iptables nftables curl nghttp2-client python3 python3-h2 python3-grpcio
           prometheus socat procps util-linux nginx-light python3-grpc-tools python3-protobuf"
pkgs_sanitize="gcc"
pkgs_fuzz="clang libclang-rt-14-dev"
pkgs_bench="haproxy nginx-light wrk nghttp2-client nftables util-linux"
pkgs_image="podman debootstrap"

apt_updated=0
need() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" != 0 ]; then
		die "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})"
	fi
	say "installing: ${missing[*]}"
	if [ $apt_updated = 0 ]; then
		apt-get update -qq >/dev/null || die "apt-get update failed"
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
		>/dev/null || die "apt-get install ${missing[*]} failed"
}

deps() {
	local flavor=$1
	vendor/deps.sh fetch build/deps
	case $flavor in
	musl) vendor/deps.sh build build/deps musl musl-gcc \
		"-O2 -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables" ;;
	host) vendor/deps.sh build build/deps host gcc "-O1 -g -fno-omit-frame-pointer" ;;
	esac
}

build_musl() {
	need $pkgs_build
	deps musl
	make -s -j"$jobs" FLAVOR=musl all unit
	make -s -j"$jobs" -C test/bench
	make -s -j"$jobs" -C examples
	say "build/meshd: $(stat -c %s build/meshd) bytes, $(file -b build/meshd | grep -o 'statically linked' || echo 'NOT static')"
}

build_san() {
	need $pkgs_build $pkgs_sanitize
	deps host
	make -s -j"$jobs" FLAVOR=san all unit
	make -s -j"$jobs" -C examples CC=gcc DEPS=../build/deps/host SAN=1 OUT=../build/examples-san
}

cmd_test() {
	local sanitize=0
	for a in "$@"; do
		case $a in
		--sanitize) sanitize=1 ;;
		*) die "test: unknown option $a (known: --sanitize)" ;;
		esac
	done
	if [ $sanitize = 1 ]; then
		build_san
		need $pkgs_test
		MESHD_BIN=$top/build/san/meshd UNIT_BIN=$top/build/san/unit_tests \
			ABC_APP=$top/build/examples-san/abc-app \
			ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
			test/run.sh
	else
		build_musl
		need $pkgs_test
		MESHD_BIN=$top/build/meshd UNIT_BIN=$top/build/musl/unit_tests test/run.sh
	fi
}

cmd_fuzz() {
	local secs=${1:-60} t name corpus tmp failed=0
	need $pkgs_build $pkgs_fuzz
	deps host
	make -s -j"$jobs" FLAVOR=fuzz fuzz
	for t in build/fuzz/fuzz_*; do
		name=${t#build/fuzz/fuzz_}
		corpus=test/fuzz/corpus/$name
		mkdir -p "$corpus"
		tmp=$(mktemp -d)
		say "fuzz $name: replaying $(ls "$corpus" | wc -l) seeds, then ${secs}s"
		# New inputs go to a scratch corpus; the checked-in seeds are read only.
		if ! "$t" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
			"$tmp" "$corpus" > "build/fuzz/$name.log" 2>&1; then
			failed=1
			tail -n 40 "build/fuzz/$name.log" >&2
			say "fuzz $name: FAILED (crash input saved by libFuzzer in $(pwd))"
		else
			say "fuzz $name: $(grep -o 'stat::number_of_executed_units: [0-9]*' "build/fuzz/$name.log" |
				awk '{print $2}' | tail -n1) runs, ok, $(ls "$tmp" | wc -l) new inputs"
		fi
		rm -rf "$tmp"
	done
	return $failed
}

cmd_bench() {
	build_musl
	need $pkgs_bench
	[ -x test/bench/run.sh ] || die "test/bench/run.sh: no benchmark yet"
	test/bench/run.sh "$@"
	test/bench/propagation.sh
}

cmd_image() {
	need $pkgs_image
	test/image.sh build
	test/image.sh check
}

case "${1:-build}" in
build) build_musl ;;
test) shift; cmd_test "$@" ;;
fuzz) shift; cmd_fuzz "$@" ;;
bench) shift; cmd_bench "$@" ;;
image) shift; cmd_image "$@" ;;
clean) rm -rf build ;;
-h|--help|help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' ;;
*) die "unknown verb '$1' (see ./build.sh --help)" ;;
esac
