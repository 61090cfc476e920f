#!/usr/bin/env bash
# The binary and its command line: what a newcomer first touches.
. "$(dirname "$0")/lib.sh"
M=$MESHD_BIN

check_out "version names meshd and its commit" '^meshd [0-9]+\.[0-9]+\.[0-9]+.* \(commit [0-9a-f]{7,}' $M version
check_out "version names bearssl, libev, nghttp2, libyaml and the libc" \
	'bearssl .*libev +4\.33.*nghttp2 +1\.[0-9]+\.[0-9]+.*libyaml +0\.2\.5.*libc ' bash -c "$M version | tr '\n' ' '"
check_fails "no command: usage on stderr, status 2" 2 $M
check_out "no command prints the command list" 'commands:' $M
check_fails "unknown command: status 2" 2 $M frobnicate
check_out "unknown command: one-line error" '^meshd: unknown command "frobnicate"' $M frobnicate
check_fails "unknown flag: status 2" 2 $M version --frobnicate
check_out "unknown flag: names the flag" 'meshd version: unknown flag --frobnicate' $M version --frobnicate
check_fails "short flags are refused: status 2" 2 $M version -x
check_fails "--help: status 0" 0 $M --help
check_fails "version --help: status 0" 0 $M version --help
check_out "version --help: usage line" '^usage: meshd version' $M version --help
check_fails "stray argument: status 2" 2 $M version extra
# Busybox style: a symlink named after a command runs that command.
tmp=$(mktemp -d)
ln -s "$M" "$tmp/version"
check_out "called as a symlink named 'version'" '^meshd [0-9]' "$tmp/version"
rm -rf "$tmp"
case $(file -b "$M") in
*"statically linked"*) e2e_report 0 "binary is statically linked" ;;
*) if [ "${MESHD_EXPECT_STATIC:-1}" = 1 ] && ! "$M" version | grep -q 'built san'; then
	e2e_report 1 "binary is statically linked" "$(file -b "$M")"
   else
	echo "ok $((e2e_n += 1)) - binary is statically linked # SKIP sanitizer build is dynamic"
   fi ;;
esac
