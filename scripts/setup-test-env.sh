#!/usr/bin/env bash
# Prepare a Debian 12 machine for alcatraz's integration tests.
#
# Runs as root, non-interactively (CI=true, no stdin), with no container image
# registry and no internet except Debian's apt mirror, PyPI and the Go module
# proxy. Every step is idempotent; a re-run on a prepared machine takes a few
# seconds.
#
# Steps:
#   1. apt packages (docker.io podman runc nftables ...), skipped when present
#   2. dockerd, started detached if `docker info` fails
#   3. Podman drop-in config: runc runtime + default ulimits (quirks of this VM);
#      rootful Podman's API service on /run/podman/podman.sock, started detached if
#      its socket does not answer (pid in /run/alca-test-podman-api.pid)
#   4. Mutagen v0.18.1 (CLI + linux_amd64 agent bundle) built from the Go module
#      proxy, cached, symlinked as /usr/local/bin/mutagen
#   5. local busybox test image, tagged localhost/alca-test/busybox:latest and
#      as alpine:3.21, alpine:3.20, debian:bookworm-slim in Docker and Podman
#   6. the Debian test images localhost/alca-test/debian:{trixie,bookworm}
#      (build-debian-image.sh),
#      kernel modules br_netfilter, nf_tables (best effort)
#   7. summary
#
# Environment:
#   ALCA_TEST_CACHE  parent dir of persistent caches (default /var/cache/alcatraz-test);
#                    Mutagen lives in $ALCA_TEST_CACHE/mutagen-v0.18.1/
#   ALCA_TEST_GO     Go binary to use (default: `go` on PATH, else /usr/local/go/bin/go)
#
# Files it may create or change (nothing else):
#   /etc/containers/containers.conf.d/50-alcatraz-test.conf
#   /usr/local/bin/mutagen (symlink; an existing non-symlink is never replaced)
#   /var/log/alca-test-dockerd.log, /var/log/alca-test-podman-api.log,
#   /run/alca-test-podman-api.pid, /run/podman/podman.sock, $ALCA_TEST_CACHE/...
#   /usr/sbin/policy-rc.d only while apt runs, and only if it did not exist
#   images in Docker's and Podman's local stores (names above)

set -Eeuo pipefail
umask 022

readonly MUTAGEN_VERSION=0.18.1
readonly MUTAGEN_MODULE=github.com/mutagen-io/mutagen
readonly CACHE_PARENT=${ALCA_TEST_CACHE:-/var/cache/alcatraz-test}
readonly MUTAGEN_DIR=$CACHE_PARENT/mutagen-v$MUTAGEN_VERSION
readonly MUTAGEN_LINK=/usr/local/bin/mutagen
readonly DOCKERD_LOG=/var/log/alca-test-dockerd.log
readonly PODMAN_DROPIN_DIR=/etc/containers/containers.conf.d
readonly PODMAN_DROPIN=$PODMAN_DROPIN_DIR/50-alcatraz-test.conf
readonly PODMAN_SOCKET=/run/podman/podman.sock
readonly PODMAN_API_LOG=/var/log/alca-test-podman-api.log
readonly PODMAN_API_PID=/run/alca-test-podman-api.pid
readonly IMAGE_NAME=localhost/alca-test/busybox:latest
readonly IMAGE_ALIASES=(alpine:3.21 alpine:3.20 debian:bookworm-slim)
readonly IMAGE_LABEL=org.alcatraz.test.recipe
readonly IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

readonly APT_PACKAGES=(
  docker.io podman runc nftables iproute2 busybox-static
  netavark aardvark-dns   # Podman's network stack (else apt may pick CNI plugins)
  catatonit               # Podman's --init (a Recommends, skipped without recommends)
  iptables kmod ca-certificates git procps util-linux tar gzip
  debootstrap openssl     # the Debian test image; the lab's CA (tests/integration/test_names)
  zsh fish tmux           # zsh and fish: tests/unit/commands/test_completion.py drives them
  uidmap slirp4netns fuse-overlayfs python3  # the rootless lane (setup-rootless-lane.sh)
)

# Applets linked into the test image's /bin (Debian's static busybox 1.35 has
# them all). No wget: static busybox's wget crashes (glibc NSS).
readonly APPLETS=(
  sh ash true false sleep env id uname chown chmod cat ls nc ip ping echo mkdir
  rm mv cp touch ln grep sed awk head tail wc find stat test '[' '[[' printf
  kill ps timeout date hostname dd tee sort uniq tr cut xargs basename dirname
  readlink realpath sync mkfifo whoami pwd which seq yes od base64 md5sum
  sha256sum tar gzip gunzip du df mktemp nslookup netstat ifconfig route
  pidof usleep less more vi diff cmp expr rmdir chgrp hexdump su nsenter
)

STEP=init
STEP_START=$SECONDS
TMP_DIR=
BUILD_DIR=
CREATED_POLICY_RC=0

log()  { printf '[setup-test-env] %s\n' "$*"; }
warn() { printf '[setup-test-env] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup-test-env] ERROR in step "%s": %s\n' "$STEP" "$*" >&2; exit 1; }

on_err() {
  local rc=$1 line=$2 cmd=$3
  # Report once, from the main shell (not from inside $(...)).
  if [[ $BASH_SUBSHELL -eq 0 ]]; then
    printf '[setup-test-env] ERROR in step "%s": command failed (exit %s, line %s): %s\n' \
      "$STEP" "$rc" "$line" "$cmd" >&2
  fi
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

cleanup() {
  if [[ $CREATED_POLICY_RC -eq 1 ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if [[ -n $BUILD_DIR && -d $BUILD_DIR ]]; then rm -rf "$BUILD_DIR"; fi
  if [[ -n $TMP_DIR && -d $TMP_DIR ]]; then rm -rf "$TMP_DIR"; fi
}
trap cleanup EXIT

step() {
  STEP=$1
  STEP_START=$SECONDS
  log "== $STEP"
}
step_done() { log "   done in $((SECONDS - STEP_START)) s"; }

# Run a command quietly; on failure show its output and fail the step.
quiet() {
  local desc=$1 out
  shift
  out=$TMP_DIR/quiet.out
  if ! "$@" >"$out" 2>&1 </dev/null; then
    tail -n 40 "$out" >&2 || true
    die "$desc failed: $*"
  fi
}

# ---------------------------------------------------------------------------
# 0. preconditions
# ---------------------------------------------------------------------------
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
  sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -r /etc/debian_version ]] || die "this script targets Debian 12"
export DEBIAN_FRONTEND=noninteractive
ORIG_PATH=${PATH:-}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin${PATH:+:$PATH}
TMP_DIR=$(mktemp -d /tmp/alca-setup.XXXXXX)
RUN_START=$SECONDS

mkdir -p "$CACHE_PARENT"
# Serialise concurrent runs. fd 9 is closed for every long-lived child (dockerd,
# podman/conmon) so that they never keep the lock.
exec 9>"$CACHE_PARENT/.setup.lock"
if ! flock -w 900 9; then die "another setup-test-env.sh run holds $CACHE_PARENT/.setup.lock"; fi

# ---------------------------------------------------------------------------
# 1. packages
# ---------------------------------------------------------------------------
step "1/7 apt packages"
pkg_installed() {
  local status
  status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null) || return 1
  [[ $status == ii* ]]
}
missing=()
for p in "${APT_PACKAGES[@]}"; do
  pkg_installed "$p" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  log "   all ${#APT_PACKAGES[@]} packages already installed"
else
  log "   installing: ${missing[*]}"
  # Keep package scripts from starting daemons (no init system here; we start
  # dockerd ourselves below). Only while apt runs and only if absent.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    CREATED_POLICY_RC=1
  fi
  apt_opts=(-q -y -o DPkg::Lock::Timeout=300 -o APT::Install-Recommends=false
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  quiet "apt-get update" apt-get "${apt_opts[@]}" update
  quiet "apt-get install" apt-get "${apt_opts[@]}" install "${missing[@]}"
  if [[ $CREATED_POLICY_RC -eq 1 ]]; then
    rm -f /usr/sbin/policy-rc.d
    CREATED_POLICY_RC=0
  fi
  for p in "${missing[@]}"; do
    pkg_installed "$p" || die "package $p is still not installed after apt-get install"
  done
fi
for c in dockerd docker podman runc nft modprobe flock setsid; do
  command -v "$c" >/dev/null || die "command '$c' not found after installing packages"
done
[[ -x /bin/busybox ]] || die "/bin/busybox missing (package busybox-static)"
step_done

# ---------------------------------------------------------------------------
# 2. dockerd
# ---------------------------------------------------------------------------
step "2/7 docker daemon"
docker_ok() { timeout 20 docker info >/dev/null 2>&1 </dev/null; }
if docker_ok; then
  log "   docker already answers"
else
  dockerd_pid=
  if pgrep -x dockerd >/dev/null; then
    log "   a dockerd is already running but does not answer yet; waiting for it"
  else
    log "   starting dockerd (log: $DOCKERD_LOG)"
    # Every inherited descriptor above 2 is closed, not only our lock (fd 9): a caller's lock
    # (`flock FILE scripts/setup-test-env.sh`) would otherwise be held for dockerd's life.
    setsid python3 -c 'import os, sys; os.closerange(3, 65536); os.execvp(sys.argv[1], sys.argv[1:])' dockerd \
      >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    dockerd_pid=$!
  fi
  deadline=$((SECONDS + 60))
  until docker_ok; do
    if [[ -n $dockerd_pid ]] && ! kill -0 "$dockerd_pid" 2>/dev/null; then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      die "dockerd exited during start-up (see $DOCKERD_LOG)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$DOCKERD_LOG" >&2 || true
      die "docker info still fails after 60 s (see $DOCKERD_LOG)"
    fi
    sleep 1
  done
  log "   dockerd is up${dockerd_pid:+ (pid $dockerd_pid)}"
  # Tests may restart a dockerd only if this script started it (they check this pid).
  [[ -n $dockerd_pid ]] && echo "$dockerd_pid" >/run/alca-test-dockerd.pid
fi
step_done

# ---------------------------------------------------------------------------
# 3. Podman configuration (a drop-in; Podman 4.3 reads containers.conf.d)
# ---------------------------------------------------------------------------
step "3/7 podman configuration"
podman_dropin_content() {
  cat <<'EOF'
# Written by alcatraz scripts/setup-test-env.sh for the integration-test VM.
# crun fails here ("cgroups in hybrid mode not supported") and the VM lacks
# CAP_SYS_RESOURCE, so Podman's default rlimits cannot be applied.
[containers]
default_ulimits = [
  "nofile=1024:1024",
  "nproc=1024:1024",
]

[engine]
runtime = "runc"
EOF
}
mkdir -p "$PODMAN_DROPIN_DIR"
if [[ -f $PODMAN_DROPIN ]] && [[ $(cat "$PODMAN_DROPIN") == "$(podman_dropin_content)" ]]; then
  log "   $PODMAN_DROPIN up to date"
else
  podman_dropin_content >"$PODMAN_DROPIN.tmp"
  mv -f "$PODMAN_DROPIN.tmp" "$PODMAN_DROPIN"
  log "   wrote $PODMAN_DROPIN"
fi
if [[ -n ${CONTAINERS_CONF:-} ]]; then
  warn "CONTAINERS_CONF=$CONTAINERS_CONF is set; Podman may ignore the drop-in"
fi
# Podman 4.3 logs each config file it reads at debug level ("Merged system
# config ..."). stderr is kept out of sight otherwise: the first call on fresh
# storage also warns about Debian's unused CNI config
# /etc/cni/net.d/87-podman-bridge.conflist (Podman picks netavark anyway).
podman_runtime=$(podman --log-level=debug info --format '{{.Host.OCIRuntime.Name}}' \
  2>"$TMP_DIR/podman-info.err" 9>&- </dev/null) || {
  grep -v 'level=debug' "$TMP_DIR/podman-info.err" >&2 || true
  die "podman info failed"
}
grep -F 'Merged system config' "$TMP_DIR/podman-info.err" | grep -qF "$PODMAN_DROPIN" ||
  die "podman did not read $PODMAN_DROPIN (CONTAINERS_CONF set? see 'podman --log-level=debug info')"
[[ $podman_runtime == runc ]] ||
  die "podman uses OCI runtime '$podman_runtime', not runc, although $PODMAN_DROPIN says so"
log "   podman reads the drop-in; runtime: $podman_runtime"

# Rootful Podman's API service: `alca up` records the socket and `alca run` execs through it
# (docs/performance.md). No systemd here, so it is started like dockerd: detached, every
# inherited descriptor closed, its pid kept for the tests. `--time=0`: it never idles out.
podman_api_ok() {
  python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(b"GET /_ping HTTP/1.1\r\nHost: podman\r\nConnection: close\r\n\r\n")
sys.exit(0 if s.recv(64).startswith(b"HTTP/1.1 200") else 1)' "$PODMAN_SOCKET" >/dev/null 2>&1 </dev/null
}
if podman_api_ok; then
  log "   podman's API already answers on $PODMAN_SOCKET"
else
  mkdir -p "$(dirname "$PODMAN_SOCKET")"
  log "   starting podman system service on $PODMAN_SOCKET (log: $PODMAN_API_LOG)"
  setsid python3 -c 'import os, sys; os.closerange(3, 65536); os.execvp(sys.argv[1], sys.argv[1:])' \
    podman system service --time=0 "unix://$PODMAN_SOCKET" \
    >>"$PODMAN_API_LOG" 2>&1 </dev/null 9>&- &
  podman_api_pid=$!
  deadline=$((SECONDS + 30))
  until podman_api_ok; do
    if ! kill -0 "$podman_api_pid" 2>/dev/null; then
      tail -n 30 "$PODMAN_API_LOG" >&2 || true
      die "podman system service exited during start-up (see $PODMAN_API_LOG)"
    fi
    ((SECONDS < deadline)) || die "podman's API does not answer after 30 s (see $PODMAN_API_LOG)"
    sleep 0.2
  done
  echo "$podman_api_pid" >"$PODMAN_API_PID"
  log "   podman's API answers (pid $podman_api_pid)"
fi
step_done

# ---------------------------------------------------------------------------
# 4. Mutagen
# ---------------------------------------------------------------------------
step "4/7 mutagen v$MUTAGEN_VERSION"
mutagen_ok() { # $1 = dir holding mutagen + mutagen-agents.tar.gz
  [[ -x $1/mutagen && -s $1/mutagen-agents.tar.gz ]] || return 1
  [[ $("$1/mutagen" version 2>/dev/null </dev/null) == "$MUTAGEN_VERSION" ]]
}
if mutagen_ok "$MUTAGEN_DIR"; then
  log "   cached build in $MUTAGEN_DIR"
else
  GO_BIN=${ALCA_TEST_GO:-$(command -v go || echo /usr/local/go/bin/go)}
  [[ -x $GO_BIN ]] || die "Go toolchain not found (set ALCA_TEST_GO); need Go >= 1.22"
  BUILD_DIR=$(mktemp -d "$CACHE_PARENT/build.XXXXXX")
  # The toolchain must never fetch another toolchain; all Go state lives in
  # our cache (module cache) or the build dir (build cache), so HOME/GOPATH of
  # the CI user do not matter. -modcacherw keeps the module cache deletable.
  export GOTOOLCHAIN=local
  export GOFLAGS="-buildvcs=false -modcacherw"
  export GOPATH=$CACHE_PARENT/go
  export GOMODCACHE=$CACHE_PARENT/go/pkg/mod
  export GOCACHE=$BUILD_DIR/gocache
  export GOWORK=off GO111MODULE=on
  go_version=$("$GO_BIN" env GOVERSION) || die "$GO_BIN does not run"
  go_minor=$(sed -E 's/^go1\.([0-9]+).*/\1/' <<<"$go_version")
  if [[ ! $go_minor =~ ^[0-9]+$ ]] || ((go_minor < 22)); then
    die "Mutagen v$MUTAGEN_VERSION needs Go >= 1.22, $GO_BIN is $go_version"
  fi
  log "   building with $GO_BIN ($go_version) in $BUILD_DIR"
  json=$(cd "$BUILD_DIR" && "$GO_BIN" mod download -json "$MUTAGEN_MODULE@v$MUTAGEN_VERSION" </dev/null) || {
    printf '%s\n' "${json:-}" >&2
    die "go mod download $MUTAGEN_MODULE@v$MUTAGEN_VERSION failed (Go module proxy reachable? GOPROXY=$("$GO_BIN" env GOPROXY))"
  }
  src=$(sed -n 's/^[[:space:]]*"Dir":[[:space:]]*"\(.*\)",\{0,1\}[[:space:]]*$/\1/p' <<<"$json")
  [[ -n $src && -f $src/go.mod ]] || die "could not find the module's Dir in: $json"
  cp -r "$src" "$BUILD_DIR/src"
  chmod -R u+w "$BUILD_DIR/src"
  mkdir -p "$BUILD_DIR/out/agents"
  (
    cd "$BUILD_DIR/src"
    export CGO_ENABLED=0
    quiet "go build (mutagen CLI)" \
      "$GO_BIN" build -trimpath -ldflags='-s -w' -tags mutagencli \
      -o "$BUILD_DIR/out/mutagen" ./cmd/mutagen
    quiet "go build (mutagen agent linux/amd64)" \
      env GOOS=linux GOARCH=amd64 "$GO_BIN" build -trimpath -ldflags='-s -w' -tags mutagenagent \
      -o "$BUILD_DIR/out/agents/linux_amd64" ./cmd/mutagen-agent
  )
  # Bundle entries must be bare names ("linux_amd64", not "./linux_amd64").
  tar -C "$BUILD_DIR/out/agents" --owner=0 --group=0 --numeric-owner \
    -czf "$BUILD_DIR/out/mutagen-agents.tar.gz" linux_amd64
  [[ $(tar -tzf "$BUILD_DIR/out/mutagen-agents.tar.gz") == linux_amd64 ]] ||
    die "agent bundle has unexpected entries"
  mutagen_ok "$BUILD_DIR/out" || die "freshly built mutagen does not report version $MUTAGEN_VERSION"
  mkdir -p "$MUTAGEN_DIR"
  # Bundle first, binary last: the cache check needs both.
  mv -f "$BUILD_DIR/out/mutagen-agents.tar.gz" "$MUTAGEN_DIR/mutagen-agents.tar.gz"
  mv -f "$BUILD_DIR/out/mutagen" "$MUTAGEN_DIR/mutagen"
  rm -rf "$BUILD_DIR"
  BUILD_DIR=
  mutagen_ok "$MUTAGEN_DIR" || die "mutagen in $MUTAGEN_DIR is not usable after install"
  log "   built and cached in $MUTAGEN_DIR"
fi
# Mutagen resolves its own executable through symlinks and finds the bundle
# next to the target, so a symlink on PATH is enough.
if [[ -L $MUTAGEN_LINK ]]; then
  if [[ $(readlink "$MUTAGEN_LINK") != "$MUTAGEN_DIR/mutagen" ]]; then
    log "   repointing $MUTAGEN_LINK (was -> $(readlink "$MUTAGEN_LINK"))"
    ln -sfn "$MUTAGEN_DIR/mutagen" "$MUTAGEN_LINK"
  fi
elif [[ -e $MUTAGEN_LINK ]]; then
  die "$MUTAGEN_LINK exists and is not a symlink; refusing to replace it (move it away and re-run)"
else
  ln -s "$MUTAGEN_DIR/mutagen" "$MUTAGEN_LINK"
  log "   linked $MUTAGEN_LINK -> $MUTAGEN_DIR/mutagen"
fi
[[ $(mutagen version </dev/null) == "$MUTAGEN_VERSION" ]] ||
  die "'mutagen version' on PATH ($(command -v mutagen)) does not print $MUTAGEN_VERSION"
caller_mutagen=$(PATH=$ORIG_PATH command -v mutagen || true)
if [[ $caller_mutagen != "$MUTAGEN_LINK" ]]; then
  warn "on the caller's PATH 'mutagen' is '${caller_mutagen:-not found}', not $MUTAGEN_LINK"
fi
step_done

# ---------------------------------------------------------------------------
# 5. test images
# ---------------------------------------------------------------------------
step "5/7 test images"
readonly IMPORT_CHANGES=(
  'CMD ["sh"]'
  "ENV PATH=$IMAGE_PATH"
)

build_rootfs() { # $1 = rootfs dir
  local r=$1 a
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,workspace,home,proc,sys,dev,run}
  chmod 1777 "$r/tmp" "$r/var/tmp"
  chmod 0700 "$r/root"
  install -m 0755 /bin/busybox "$r/bin/busybox"
  for a in "${APPLETS[@]}"; do
    /bin/busybox --list | grep -Fxq -- "$a" || die "busybox has no applet '$a'"
    ln -s busybox "$r/bin/$a"
  done
  ln -s ../../bin/busybox "$r/usr/bin/env"
  printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$r/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$r/etc/group"
  # No /etc/hosts, /etc/resolv.conf or /etc/hostname: the engines provide them.
}

# Hash of everything that defines the image; stored as a label on the image.
recipe_hash() {
  {
    declare -f build_rootfs
    printf '%s\n' "${APPLETS[@]}" "${IMPORT_CHANGES[@]}"
    sha256sum </bin/busybox
  } | sha256sum | cut -c1-16
}
RECIPE=$(recipe_hash)
ROOTFS_TAR=

rootfs_tar() { # builds the tarball once per run
  if [[ -z $ROOTFS_TAR ]]; then
    build_rootfs "$TMP_DIR/rootfs"
    tar -C "$TMP_DIR/rootfs" --numeric-owner --owner=0 --group=0 \
      -cf "$TMP_DIR/rootfs.tar" .
    ROOTFS_TAR=$TMP_DIR/rootfs.tar
  fi
}

# Name under which Podman should store an alias: fully qualified the way
# Docker normalises it (alpine:3.21 -> docker.io/library/alpine:3.21).
qualified() {
  local n=$1 first=${1%%/*}
  if [[ $n != */* ]]; then
    echo "docker.io/library/$n"
  elif [[ $first == *.* || $first == *:* || $first == localhost ]]; then
    echo "$n"
  else
    echo "docker.io/$n"
  fi
}

engine_image_id() { # $1 engine, $2 name
  "$1" image inspect --format '{{.Id}}' "$2" 2>/dev/null </dev/null 9>&-
}

ensure_image() { # $1 = docker|podman
  local engine=$1 current id old_id alias name changes=() c
  current=$("$engine" image inspect --format "{{index .Config.Labels \"$IMAGE_LABEL\"}}" \
    "$IMAGE_NAME" 2>/dev/null </dev/null 9>&-) || current=
  old_id=$(engine_image_id "$engine" "$IMAGE_NAME") || old_id=
  if [[ $current == "$RECIPE" ]]; then
    log "   $engine: $IMAGE_NAME up to date (recipe $RECIPE)"
  else
    rootfs_tar
    for c in "${IMPORT_CHANGES[@]}" "LABEL $IMAGE_LABEL=$RECIPE"; do
      changes+=(--change "$c")
    done
    quiet "$engine import" "$engine" import "${changes[@]}" "$ROOTFS_TAR" "$IMAGE_NAME"
    log "   $engine: imported $IMAGE_NAME (recipe $RECIPE)"
  fi
  id=$(engine_image_id "$engine" "$IMAGE_NAME") || die "$engine: $IMAGE_NAME missing after import"
  for alias in "${IMAGE_ALIASES[@]}"; do
    name=$alias
    [[ $engine == podman ]] && name=$(qualified "$alias")
    if [[ $(engine_image_id "$engine" "$name" || true) != "$id" ]]; then
      quiet "$engine tag $name" "$engine" tag "$IMAGE_NAME" "$name"
      log "   $engine: tagged $name"
    fi
  done
  # Drop our previous (now untagged) image; ignore failures (e.g. in use).
  if [[ -n $old_id && $old_id != "$id" ]]; then
    "$engine" image rm "$old_id" >/dev/null 2>&1 </dev/null 9>&- || true
  fi
}
ensure_image docker
ensure_image podman

# Prove the short names resolve locally (a pull would fail: no registry) and,
# for Podman, that the drop-in's ulimits apply.
for engine in docker podman; do
  for ref in "$IMAGE_NAME" alpine:3.21; do
    # shellcheck disable=SC2016 # expanded by the container's shell
    out=$("$engine" run --rm "$ref" sh -c 'echo "$(id -un) $(ulimit -n)"' 2>&1 </dev/null 9>&-) ||
      die "'$engine run --rm $ref' failed: $out"
    [[ $out == "root "* ]] || die "'$engine run --rm $ref' printed unexpected output: $out"
    if [[ $engine == podman && $out != "root 1024" ]]; then
      die "podman container has nofile limit '${out#root }', expected 1024 from $PODMAN_DROPIN"
    fi
  done
done
log "   docker and podman run $IMAGE_NAME and alpine:3.21 from local storage"
step_done

# ---------------------------------------------------------------------------
# 6. kernel modules (and the Debian test image)
# ---------------------------------------------------------------------------
# The Debian images (trixie: apt, curl, Python, Node.js with npm, git; bookworm: Python
# 3.11): their own script, cached by recipe, both at once (mostly waiting on the mirror
# and dpkg).
build_images_start=$SECONDS
pids=()
for suite in trixie bookworm; do
  bash "$(dirname "${BASH_SOURCE[0]}")/build-debian-image.sh" "$suite" 9>&- &
  pids+=("$!")
done
for pid in "${pids[@]}"; do
  wait "$pid" || die "building a Debian test image failed (its log is above)"
done
log "   Debian test images ready in $((SECONDS - build_images_start)) s"

step "6/7 kernel modules"
# On this VM both are built in, /lib/modules does not exist and modprobe fails
# ("Module ... not found in directory /lib/modules/..."); probe the feature then.
module_present() {
  case $1 in
    br_netfilter) [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] ;;
    nf_tables) nft list tables >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}
for m in br_netfilter nf_tables; do
  if err=$(modprobe "$m" 2>&1); then
    log "   $m: modprobe ok"
  elif module_present "$m"; then
    log "   $m: built in / already active (modprobe failed: ${err:-?})"
  else
    warn "$m: not available and modprobe failed (ignored): ${err:-unknown error}"
  fi
done
step_done

# ---------------------------------------------------------------------------
# 7. summary
# ---------------------------------------------------------------------------
step "7/7 summary"
docker_server=$(docker version --format '{{.Server.Version}}' 2>/dev/null) || docker_server='?'
podman_info=$(podman info --format '{{.Version.Version}} runtime={{.Host.OCIRuntime.Name}} network={{.Host.NetworkBackend}} cgroups={{.Host.CgroupManager}}/{{.Host.CgroupsVersion}}' 2>/dev/null 9>&-) || podman_info='?'
log "   docker server:  $docker_server (client $(docker version --format '{{.Client.Version}}' 2>/dev/null || echo ?))"
log "   podman:         $podman_info"
log "   nft:            $(nft --version 2>/dev/null || echo ?)"
log "   mutagen:        $(mutagen version) ($MUTAGEN_LINK -> $(readlink -f "$MUTAGEN_LINK"))"
image_filter='^(localhost/alca-test/(busybox|debian)|(docker\.io/library/)?alpine|(docker\.io/library/)?debian|localhost/(alpine|debian)):'
log "   docker images:  $(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E "$image_filter" | sort | tr '\n' ' ')"
log "   podman images:  $(podman images --format '{{.Repository}}:{{.Tag}}' 9>&- | grep -E "$image_filter" | sort | tr '\n' ' ')"
log "OK: test environment ready in $((SECONDS - RUN_START)) s"
