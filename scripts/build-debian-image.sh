#!/usr/bin/env bash
# Build a Debian test image for alcatraz's integration tests, without a registry.
#
#   build-debian-image.sh [trixie|bookworm]   (default: trixie)
#
#   debootstrap (minbase) -> apt-get install the suite's packages
#   -> tar -> `docker import` and `podman import` as localhost/alca-test/debian:SUITE
#
# Two suites, chosen for what runs inside (docs/agents.md, "Tested images"):
#   trixie    Debian stable: curl, Python 3.13, Node.js 20 with npm, git; the Node.js agents
#             (Gemini CLI declares Node.js >= 20; bookworm's is 18) and the other Debian
#             tests. Testing (forky, Node.js 24) is not an option: the mirror these machines
#             reach serves a snapshot whose testing Release file has expired, so apt-get
#             update fails there, inside a sandbox too.
#   bookworm  Python 3.11, for aider (aider-chat declares Python < 3.13; trixie's is 3.13);
#             the preset's own install step adds pipx.
# An image is rebuilt only when its recipe (the suite, its package list and the build
# steps) changes: the recipe's hash is a label on the image, and the root filesystem's
# tarball is cached in $ALCA_TEST_CACHE/debian-<suite>-<hash>.tar between runs on the
# same machine.
#
# Runs as root, non-interactively; needs Debian's package mirror (from the host's apt
# sources) and nothing else.
set -Eeuo pipefail
umask 022

readonly SUITE=${1:-trixie}
case $SUITE in
  # What the tests and the Node.js agents run inside: names (getent, from libc-bin), apt,
  # HTTPS with curl, Python, Node.js with npm (what node:22-bookworm-slim, the presets'
  # image, gives them), and git.
  trixie) PACKAGES=(ca-certificates curl python3 nodejs npm git) ;;
  # What the same image gives a Python agent: the distribution's Python.
  bookworm) PACKAGES=(ca-certificates python3) ;;
  *)
    printf '[build-debian-image] ERROR: unknown suite %q (trixie or bookworm)\n' "$SUITE" >&2
    exit 2
    ;;
esac
readonly PACKAGES
readonly IMAGE=localhost/alca-test/debian:$SUITE
readonly LABEL=org.alcatraz.test.recipe
readonly CACHE_PARENT=${ALCA_TEST_CACHE:-/var/cache/alcatraz-test}

log() { printf '[build-debian-image %s] %s\n' "$SUITE" "$*"; }
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
