#!/usr/bin/env bash
# Build the Debian test image for alcatraz's integration tests, without a registry.
#
#   debootstrap (minbase, Debian 13 "trixie") -> apt-get install the tools tests use
#   -> tar -> `docker import` and `podman import` as localhost/alca-test/debian:trixie
#
# Trixie, because its Node.js is 20 (bookworm's 18 is too old for some agents). The image
# is rebuilt only when its recipe (this file's package list and steps) changes: the
# recipe's hash is a label on the image, and the root filesystem's tarball is cached in
# $ALCA_TEST_CACHE/debian-<hash>.tar between runs on the same machine.
#
# Runs as root, non-interactively; needs Debian's package mirror (from the host's apt
# sources) and nothing else.
set -Eeuo pipefail
umask 022

readonly SUITE=trixie
readonly IMAGE=localhost/alca-test/debian:trixie
readonly LABEL=org.alcatraz.test.recipe
readonly CACHE_PARENT=${ALCA_TEST_CACHE:-/var/cache/alcatraz-test}
# What the tests run inside: names (getent, from libc-bin), apt, HTTPS with curl, Python,
# Node.js and git.
readonly PACKAGES=(ca-certificates curl python3 nodejs git)

log() { printf '[build-debian-image] %s\n' "$*"; }
die() { printf '[build-debian-image] ERROR: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "must run as root"
export DEBIAN_FRONTEND=noninteractive

recipe() {
  printf '%s\n' "$SUITE" "${PACKAGES[@]}"
  declare -f build_rootfs
}

mirror() { # the first Debian mirror of the host's apt sources
  local uri
  uri=$(grep -hE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null |
    grep -v security | head -n1 | awk '{print ($1 == "deb") ? $2 : $2}')
  [[ -n $uri ]] || uri=http://deb.debian.org/debian
  echo "$uri"
}

build_rootfs() { # $1 = empty directory
  local root=$1
  debootstrap --variant=minbase --include=ca-certificates "$SUITE" "$root" "$(mirror)" \
    >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; die "debootstrap failed"; }
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  trap 'umount "$root/proc" 2>/dev/null || true' RETURN
  chroot "$root" apt-get -q -y -o APT::Install-Recommends=false update >>"$root.log" 2>&1 ||
    { tail -n 30 "$root.log" >&2; die "apt-get update in the chroot failed"; }
  chroot "$root" apt-get -q -y -o APT::Install-Recommends=false install "${PACKAGES[@]}" \
    >>"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; die "apt-get install in the chroot failed"; }
  chroot "$root" apt-get clean
  rm -rf "$root/var/lib/apt/lists/"* "$root/etc/resolv.conf" "$root/etc/hostname"
  : >"$root/etc/resolv.conf"  # the engines provide it
}

HASH=$(recipe | sha256sum | cut -c1-16)
TARBALL=$CACHE_PARENT/debian-$SUITE-$HASH.tar

have_image() { # $1 engine
  [[ $("$1" image inspect --format "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE" 2>/dev/null) == "$HASH" ]]
}

if have_image docker && have_image podman; then
  log "$IMAGE is current (recipe $HASH)"
  exit 0
fi
if [[ ! -s $TARBALL ]]; then
  command -v debootstrap >/dev/null || apt-get -q -y install debootstrap >/dev/null
  mkdir -p "$CACHE_PARENT"
  work=$(mktemp -d "$CACHE_PARENT/debian.XXXXXX")
  trap 'umount "$work/root/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
  log "debootstrap $SUITE and ${PACKAGES[*]} (a few minutes, once per recipe)"
  build_rootfs "$work/root"
  tar -C "$work/root" --numeric-owner -cf "$TARBALL.tmp" .
  mv -f "$TARBALL.tmp" "$TARBALL"
  find "$CACHE_PARENT" -maxdepth 1 -name "debian-$SUITE-*.tar" ! -name "$(basename "$TARBALL")" -delete
fi
for engine in docker podman; do
  have_image "$engine" && continue
  quiet=(); [[ $engine == podman ]] && quiet=(--quiet)
  "$engine" import "${quiet[@]}" --change 'CMD ["bash"]' --change "LABEL $LABEL=$HASH" \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "$TARBALL" "$IMAGE" >/dev/null </dev/null 9>&-
  have_image "$engine" || die "$engine import did not produce $IMAGE with recipe $HASH"
  log "imported $IMAGE into $engine"
done
