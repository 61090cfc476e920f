#!/usr/bin/env bash
# test/image.sh: builds the meshd container image and proves it works without running a
# container runtime (podman run needs cgroups these machines do not give):
#   test/image.sh build    build the image (tag meshd:latest, also meshd:<commit>)
#   test/image.sh check    unpack the image into an empty directory and run /meshd there
#                          with chroot: it must hold the binary alone and the binary must run
# The builder stage needs a Debian base image. Where no registry answers, one is made here
# with debootstrap from the Debian mirror this machine already uses, and imported locally.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "image: $*" >&2; }
die() { echo "image: $*" >&2; exit 1; }

engine=
if command -v podman >/dev/null; then engine=podman
elif command -v docker >/dev/null; then engine=docker
else die "neither podman nor docker is installed"; fi

local_base=localhost/meshd-debian:bookworm
commit=$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)

builder_image() {
	local want=docker.io/library/debian:bookworm-slim root mirror
	if $engine image exists "$want" 2>/dev/null || timeout 60 $engine pull -q "$want" >/dev/null 2>&1; then
		echo "$want"; return
	fi
	if $engine image exists "$local_base" 2>/dev/null; then
		echo "$local_base"; return
	fi
	command -v debootstrap >/dev/null || die "no Debian base image and no debootstrap to make one"
	mirror=$(vendor/deps.sh mirror)
	[ -n "$mirror" ] || die "no Debian mirror configured in /etc/apt"
	root=$(mktemp -d /tmp/meshd-debian.XXXXXX)
	say "no registry reachable: making a Debian base with debootstrap (about a minute)"
	debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 ||
		{ tail -n 20 "$root.log" >&2; die "debootstrap failed"; }
	tar -C "$root" -c . | $engine import - "$local_base" >/dev/null
	rm -rf "$root" "$root.log"
	echo "$local_base"
}

build() {
	local base args=()
	base=$(builder_image)
	# chroot isolation: RUN steps work without cgroup controllers; host network for apt.
	[ $engine = podman ] && args+=(--isolation=chroot)
	say "building with $engine from $base"
	$engine build "${args[@]}" --network=host --build-arg "BUILDER=$base" \
		--build-arg "MESHD_COMMIT=$commit" -t meshd:latest -t "meshd:$commit" . >&2
	say "built meshd:latest ($($engine image inspect meshd:latest --format '{{.Size}}') bytes)"
}

check() {
	local n
	# global: the EXIT trap runs after this function has returned
	img_root=$(mktemp -d /tmp/meshd-image.XXXXXX)
	trap 'rm -rf "$img_root" "$img_root.tar"' EXIT
	local root=$img_root tar=$img_root.tar
	$engine save --format docker-archive -o "$tar" meshd:latest >/dev/null
	mkdir -p "$root/img" "$root/rootfs"
	tar -C "$root/img" -xf "$tar"
	for layer in $(cd "$root/img" && python3 -c 'import json;print(" ".join(json.load(open("manifest.json"))[0]["Layers"]))'); do
		tar -C "$root/rootfs" -xf "$root/img/$layer"
	done
	n=$(find "$root/rootfs" -mindepth 1 | wc -l)
	echo "rootfs: $(cd "$root/rootfs" && find . -mindepth 1 | tr '\n' ' ')"
	[ "$n" = 1 ] && [ -x "$root/rootfs/meshd" ] || die "image holds more than /meshd"
	# An empty root: no /dev, /etc, /proc, no libc. Run as the image's user.
	chroot --userspec=2102:2102 "$root/rootfs" /meshd version
}

case "${1:-}" in
build) build ;;
check) check ;;
*) die "usage: test/image.sh build|check" ;;
esac
