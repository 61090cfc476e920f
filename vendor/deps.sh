#!/usr/bin/env bash
# vendor/deps.sh: fetch, verify, unpack and build meshd's C dependencies from the Debian source
# packages pinned in vendor/deps.lock. No third-party code is kept in the repository.
#
# Pinned files are fetched straight from the pool of the Debian mirrors this machine uses and
# accepted only with the pinned sha256 (stronger than the archive index: it names the exact
# bytes). Only when a pinned file has left the archive does the script fall back to apt-get
# source against the suite's signed index, loudly, and the binary then reports UNPINNED.
#
#   vendor/deps.sh fetch OUT                      download + verify + unpack into OUT/src/<pkg>,
#                                                 write OUT/versions.h
#   vendor/deps.sh build OUT FLAVOR CC CFLAGS     compile every library with CC and CFLAGS into
#                                                 OUT/FLAVOR/lib/lib<pkg>.a and OUT/FLAVOR/include
#   vendor/deps.sh print-lock NAME=VERSION SUITE  print deps.lock lines for a new pin
#   vendor/deps.sh mirror                         print the Debian mirror this machine uses
#
# For that fallback apt runs with a private configuration under OUT/apt: its source list is derived from the Debian
# mirrors this machine already uses (no host names live in the repository) and the system's apt
# configuration and state are never touched. Both verbs are idempotent: a stamp records what was
# done, and a second run with the same inputs returns at once.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
lock="$here/deps.lock"
jobs=$(nproc 2>/dev/null || echo 2)

die() { echo "deps: $*" >&2; exit 1; }
say() { echo "deps: $*" >&2; }

lock_lines() { grep -v '^[[:space:]]*#' "$lock" | grep -v '^[[:space:]]*$'; }
lock_hash() { cat "$lock" "$here/deps.sh" | sha256sum | cut -c1-16; }

# Prints "main URI" and "security URI" lines for the Debian archive mirrors configured on this
# machine, read from deb822 .sources files and one-line .list files alike.
mirror_uris() {
	local f
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk '
		function flush() {
			if (uris != "" && enabled && suites ~ /(bookworm|trixie|forky|bullseye|sid|stable|testing)/) {
				n = split(uris, u, " ")
				for (i = 1; i <= n; i++)
					print (suites ~ /-security/ ? "security " : "main ") u[i]
			}
			uris = ""; suites = ""; enabled = 1
		}
		BEGIN { enabled = 1 }
		/^[[:space:]]*$/ { flush(); next }
		/^[[:space:]]*#/ { next }
		/^URIs:/ { sub(/^URIs:[[:space:]]*/, ""); uris = $0 }
		/^Suites:/ { sub(/^Suites:[[:space:]]*/, ""); suites = $0 }
		/^Enabled:[[:space:]]*no/ { enabled = 0 }
		END { flush() }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		sed -e 's/\[[^]]*\]//' "$f" | awk '
		$1 ~ /^deb(-src)?$/ && $3 ~ /(bookworm|trixie|forky|bullseye|sid|stable|testing)/ {
			print ($3 ~ /-security/ ? "security " : "main ") $2 }'
	done
}

# Writes OUT/apt/etc/sources.list with deb-src lines for every suite deps.lock names, and that
# suite's security suite (so a fallback can see security uploads).
apt_setup() {
	local out=$1 apt=$1/apt uris suites s kind uri keyring=""
	mkdir -p "$apt/etc" "$apt/lists/partial" "$apt/cache/archives/partial"
	uris=$(mirror_uris | sort -u)
	[ -n "$uris" ] || die "no Debian mirror found in /etc/apt; add one (deb or deb-src) and retry"
	[ -r /usr/share/keyrings/debian-archive-keyring.gpg ] &&
		keyring="[signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] "
	suites=$(lock_lines | awk '{print $3}' | sed 's/-security$//' | sort -u)
	: > "$apt/etc/sources.list.new"
	for s in $suites; do
		while read -r kind uri; do
			if [ "$kind" = main ]; then
				echo "deb-src $keyring$uri $s main" >> "$apt/etc/sources.list.new"
			else
				echo "deb-src $keyring$uri $s-security main" >> "$apt/etc/sources.list.new"
			fi
		done <<< "$uris"
	done
	if ! cmp -s "$apt/etc/sources.list.new" "$apt/etc/sources.list" 2>/dev/null; then
		mv "$apt/etc/sources.list.new" "$apt/etc/sources.list"
		rm -f "$apt/lists/"*Sources* "$apt/updated"
	else
		rm -f "$apt/etc/sources.list.new"
	fi
	APT=(apt-get -q -o "Dir::Etc::sourcelist=$apt/etc/sources.list"
	     -o Dir::Etc::sourceparts=/nonexistent -o "Dir::State::Lists=$apt/lists"
	     -o "Dir::Cache=$apt/cache" -o Debug::NoLocking=1 -o APT::Get::Download-Only=true)
	if [ ! -e "$apt/updated" ] || [ -n "$(find "$apt/updated" -mmin +1440 2>/dev/null)" ]; then
		say "reading the source indexes of: $(echo $suites)"
		"${APT[@]}" update >"$apt/update.log" 2>&1 || { cat "$apt/update.log" >&2; die "apt-get update failed"; }
		touch "$apt/updated"
	fi
}

# Checks a downloaded file against its pin; prints nothing, returns non-zero on mismatch.
check_sha() { [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

# pool_path NAME FILE: the file's place in a Debian archive's pool.
pool_path() {
	local name=$1 prefix
	case $name in lib?*) prefix=${name:0:4} ;; *) prefix=${name:0:1} ;; esac
	echo "$prefix/$name/$2"
}

# get_pinned DIR NAME FILE SHA256: downloads one pinned file from the pool of any configured
# mirror; apt-helper refuses it unless its sha256 is the pinned one.
get_pinned() {
	local dir=$1 name=$2 file=$3 sum=$4 kind uri url
	while read -r kind uri; do
		if [ "$kind" = main ]; then url=$uri/pool/main/$(pool_path "$name" "$file")
		else url=$uri/pool/updates/main/$(pool_path "$name" "$file"); fi
		if /usr/lib/apt/apt-helper download-file "$url" "$dir/$file" "SHA256:$sum" \
			>>"$dir/$name.log" 2>&1; then
			return 0
		fi
	done < <(mirror_uris | sort -u)
	return 1
}

fetch() {
	local out=$1 dl stamp pkgs p ver suite got f sum unpinned="" line missing
	stamp=$(lock_hash)
	if [ -e "$out/src/.stamp" ] && [ "$(cat "$out/src/.stamp")" = "$stamp" ]; then
		return 0
	fi
	[ -x /usr/lib/apt/apt-helper ] || die "apt is required to fetch Debian source packages"
	command -v dpkg-source >/dev/null || die "dpkg-source is required (package dpkg-dev)"
	dl=$out/dl
	rm -rf "$dl" "$out/src"
	mkdir -p "$dl" "$out/src"
	# apt drops privileges to _apt for downloads; let it write here.
	id _apt >/dev/null 2>&1 && chown _apt "$dl" 2>/dev/null || true
	pkgs=$(lock_lines | awk '{print $1 " " $2 " " $3}' | sort -u)
	: > "$out/versions.env"
	while read -r p ver suite; do
		got=$ver
		missing=0
		while read -r line; do
			set -- $line
			get_pinned "$dl" "$p" "$4" "$5" || { missing=1; break; }
		done < <(lock_lines | awk -v p="$p" '$1 == p')
		if [ $missing = 1 ]; then
			say "WARNING: $p $ver (pinned) is no longer in the archive (or not with the pinned sha256)."
			say "WARNING: to bump the pin: vendor/deps.sh print-lock $p=NEWVERSION $suite (apt-cache showsrc $p lists versions)"
			say "WARNING: falling back to the current $p of $suite; 'meshd version' will say UNPINNED."
			rm -f "$dl/${p}"_*
			apt_setup "$out"
			(cd "$dl" && "${APT[@]}" source --download-only "$p/$suite" >"$dl/$p.log" 2>&1) ||
				{ cat "$dl/$p.log" >&2; die "$p: not in $suite either"; }
			got=$(cd "$dl" && ls "${p}"_*.dsc | head -n1 | sed -e "s/^${p}_//" -e 's/\.dsc$//')
			unpinned="$unpinned $p($ver->$got)"
		fi
		(cd "$dl" && dpkg-source -q -x "$(ls "${p}"_*.dsc | head -n1)" "$out/src/$p" >"$dl/$p.unpack.log" 2>&1) ||
			{ cat "$dl/$p.unpack.log" >&2; die "$p: dpkg-source failed"; }
		echo "$p $got" >> "$out/versions.env"
		say "$p $got: verified and unpacked"
	done <<< "$pkgs"
	{
		echo "/* generated by vendor/deps.sh from vendor/deps.lock */"
		while read -r p got; do
			echo "#define MESHD_DEP_$(echo "$p" | tr 'a-z-' 'A-Z_')_DEBIAN \"$got\""
		done < "$out/versions.env"
		echo "#define MESHD_DEPS_UNPINNED \"${unpinned# }\""
	} > "$out/versions.h"
	echo "$stamp" > "$out/src/.stamp"
}

# compile_all CC CFLAGS OBJDIR SRC... : compiles each source to OBJDIR in parallel.
compile_all() {
	local cc=$1 cflags=$2 objdir=$3
	shift 3
	mkdir -p "$objdir"
	printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh -c '
		src="{}"; obj="$2/$(echo "$src" | tr / _ | sed "s/\.c$/.o/")"
		$0 $1 -c "$src" -o "$obj" || exit 255' "$cc" "$cflags" "$objdir"
}

archive() {
	local lib=$1 objdir=$2
	rm -f "$lib"
	ar rcs "$lib" "$objdir"/*.o
}

build() {
	local out=$1 flavor=$2 cc=$3 cflags=$4 dst stamp src v num
	dst=$out/$flavor
	stamp="$(lock_hash) $cc $cflags"
	if [ -e "$dst/.stamp" ] && [ "$(cat "$dst/.stamp")" = "$stamp" ]; then
		return 0
	fi
	[ -e "$out/src/.stamp" ] || die "run 'vendor/deps.sh fetch $out' first"
	command -v "${cc%% *}" >/dev/null || die "compiler $cc not found"
	rm -rf "$dst"
	mkdir -p "$dst/lib" "$dst/include" "$dst/obj"
	say "building bearssl, libev, nghttp2, libyaml ($flavor: $cc $cflags)"

	# BearSSL: its own Makefile is only "cc -c src/**/*.c" plus ar; do the same.
	src=$out/src/bearssl
	(cd "$src" && compile_all "$cc" "$cflags -Isrc -Iinc" "$dst/obj/bearssl" $(find src -name '*.c' | sort))
	archive "$dst/lib/libbearssl.a" "$dst/obj/bearssl"
	cp "$src"/inc/*.h "$dst/include/"

	# libev: one translation unit; configuration by macros (EMBEDDING in ev.pod).
	src=$out/src/libev
	(cd "$src" && compile_all "$cc" "$cflags -fno-strict-aliasing -w -DEV_STANDALONE=1 \
		-DEV_USE_EPOLL=1 -DEV_USE_POLL=1 -DEV_USE_SELECT=1 -DEV_USE_EVENTFD=1 \
		-DEV_USE_SIGNALFD=1 -DEV_USE_TIMERFD=1 -DEV_USE_INOTIFY=1 -DEV_USE_MONOTONIC=1 \
		-DEV_USE_REALTIME=0 -DEV_USE_NANOSLEEP=1 -DEV_USE_CLOCK_SYSCALL=0 \
		-DEV_USE_LINUXAIO=0 -DEV_USE_IOURING=0" "$dst/obj/libev" ev.c)
	archive "$dst/lib/libev.a" "$dst/obj/libev"
	cp "$src/ev.h" "$dst/include/"

	# nghttp2: the library only, from plain compile lines (no cmake, no host probing).
	src=$out/src/nghttp2
	v=$(sed -n 's/^nghttp2 \([0-9.]*\).*/\1/p' "$out/versions.env")
	num=$(echo "$v" | awk -F. '{printf "0x%02x%02x%02x", $1, $2, $3}')
	mkdir -p "$dst/include/nghttp2" "$dst/obj/nghttp2-cfg"
	cp "$src"/lib/includes/nghttp2/nghttp2.h "$dst/include/nghttp2/"
	sed -e "s/@PACKAGE_VERSION@/$v/" -e "s/@PACKAGE_VERSION_NUM@/$num/" \
		"$src/lib/includes/nghttp2/nghttp2ver.h.in" > "$dst/include/nghttp2/nghttp2ver.h"
	printf '#define HAVE_ARPA_INET_H 1\n#define HAVE_NETINET_IN_H 1\n#define HAVE_CLOCK_GETTIME 1\n#define HAVE_DECL_CLOCK_MONOTONIC 1\n' \
		> "$dst/obj/nghttp2-cfg/config.h"
	(cd "$src/lib" && compile_all "$cc" "$cflags -DHAVE_CONFIG_H -DBUILDING_NGHTTP2 -DNGHTTP2_STATICLIB \
		-I$dst/obj/nghttp2-cfg -I. -I$dst/include" "$dst/obj/nghttp2" $(ls *.c))
	archive "$dst/lib/libnghttp2.a" "$dst/obj/nghttp2"

	# libyaml: the parser only is needed, but the library is small; all of src/.
	src=$out/src/libyaml
	v=$(sed -n 's/^libyaml \([0-9.]*\).*/\1/p' "$out/versions.env")
	(cd "$src" && compile_all "$cc" "$cflags -w -DYAML_DECLARE_STATIC -DYAML_VERSION_MAJOR=${v%%.*} \
		-DYAML_VERSION_MINOR=$(echo "$v" | cut -d. -f2) -DYAML_VERSION_PATCH=${v##*.} \
		-DYAML_VERSION_STRING=\"$v\" -Iinclude" "$dst/obj/libyaml" $(ls src/*.c))
	archive "$dst/lib/libyaml.a" "$dst/obj/libyaml"
	cp "$src/include/yaml.h" "$dst/include/"

	echo "$stamp" > "$dst/.stamp"
}

print_lock() {
	local spec=$1 suite=$2 out tmp p
	out=$(mktemp -d)
	tmp=$(mktemp -d)
	p=${spec%%=*}
	# reuse the private apt setup with this suite added
	printf '%s %s %s %s %s\n' "$p" "${spec#*=}" "$suite" x x > "$tmp/lock"
	lock=$tmp/lock apt_setup "$out"
	chown _apt "$tmp" 2>/dev/null || true
	(cd "$tmp" && "${APT[@]}" source --download-only "$spec" >/dev/null) || die "$spec not found in $suite"
	(cd "$tmp" && for f in "${p}"_*; do
		printf '%-9s %-21s %-9s %-41s %s\n' "$p" "${spec#*=}" "$suite" "$f" "$(sha256sum "$f" | cut -d' ' -f1)"
	done)
	rm -rf "$out" "$tmp"
}

# Paths given relative to the caller are made absolute: the steps below change directory.
abspath() { mkdir -p "$1" && (cd "$1" && pwd); }
[ $# -ge 2 ] && [ "$1" != print-lock ] && set -- "$1" "$(abspath "$2")" "${@:3}"

case "${1:-}" in
fetch) [ $# -eq 2 ] || die "usage: deps.sh fetch OUT"; fetch "$2" ;;
build) [ $# -eq 5 ] || die "usage: deps.sh build OUT FLAVOR CC CFLAGS"; build "$2" "$3" "$4" "$5" ;;
mirror) mirror_uris | awk '$1 == "main" {print $2; exit}' ;;
print-lock) [ $# -eq 3 ] || die "usage: deps.sh print-lock NAME=VERSION SUITE"; print_lock "$2" "$3" ;;
*) die "usage: deps.sh fetch|build|print-lock ..." ;;
esac
