#!/usr/bin/env bash
# Prepare the rootless-Podman test lane (tests/integration/test_rootless.py).
#
# Runs as root, after scripts/setup-test-env.sh (which installs Podman, writes the
# Podman drop-in and builds the local test image). Idempotent and quiet: it prints
# nothing unless it fails (-v: log each step). A re-run on a prepared machine takes
# a few seconds.
#
# Steps:
#   1. checks that setup-test-env.sh installed uidmap, slirp4netns, fuse-overlayfs
#      and python3 (the interpreter the lane's user runs alca with)
#   2. system user alca-rootless (home /var/lib/alca-rootless, shell /bin/bash) with
#      a /etc/subuid and /etc/subgid range of 65536 ids that overlaps no other range
#   3. rootless Podman without systemd, logind or udev (what they would provide):
#      - XDG_RUNTIME_DIR /run/user/<uid> (0700, owned by the user)
#      - /dev/net/tun (slirp4netns) and /dev/fuse (fuse-overlayfs) mode 0666, as
#        udev's default rules set them
#      - the user's ~/.config/containers/containers.conf: cgroup_manager "cgroupfs"
#        (no user D-Bus), events_logger "file" (no journald); and storage.conf:
#        driver "overlay" (native rootless overlay; fuse-overlayfs when the kernel
#        lacks it). Without storage.conf Podman 4.3 falls back to the slow vfs.
#      - an empty /var/lib/cni: Podman 4.3's rootless network namespace bind-mounts
#        over /var/lib/cni, or over all of /var/lib when that does not exist, which
#        hides a home under /var/lib: every container on a custom network then
#        fails with "unable to find network ... network not found" (podman#14780)
#      /run and /dev are tmpfs/devtmpfs here: re-run the script after a reboot.
#   4. localhost/alca-test/busybox:latest copied from root's Podman storage into the
#      user's (podman save, then podman load as the user), skipped when the image
#      ids already match
#   5. checks, as the user: `podman info` says rootless, `podman run --rm <image>
#      true` works, and so does a container on a custom network (as alca uses)
#
# Environment:
#   ALCA_TEST_CACHE  parent dir of the lock file (default /var/cache/alcatraz-test)
#
# Files it may create or change (nothing else):
#   /etc/passwd, /etc/group, /etc/shadow, /etc/gshadow (useradd), /etc/subuid, /etc/subgid
#   /var/lib/alca-rootless/... (the user's home: containers.conf, storage.conf,
#     Podman storage; the whole storage is reset if it is not on overlay)
#   /run/user/<uid of alca-rootless>/, /var/lib/cni/ (empty)
#   the modes of /dev/net/tun and /dev/fuse (0666)
#   $ALCA_TEST_CACHE/.rootless-lane.lock

set -Eeuo pipefail
umask 022

readonly LANE_USER=alca-rootless
readonly LANE_HOME=/var/lib/alca-rootless
readonly IMAGE_NAME=localhost/alca-test/busybox:latest
readonly SUBID_COUNT=65536
readonly SUBID_MIN=100000
readonly CACHE_PARENT=${ALCA_TEST_CACHE:-/var/cache/alcatraz-test}
readonly ROOT_DROPIN=/etc/containers/containers.conf.d/50-alcatraz-test.conf
readonly LANE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

STEP=init
TMP_DIR=
VERBOSE=0

log()  { if [[ $VERBOSE -eq 1 ]]; then printf '[setup-rootless-lane] %s\n' "$*"; fi; }
warn() { printf '[setup-rootless-lane] WARNING: %s\n' "$*" >&2; }
die()  { printf '[setup-rootless-lane] ERROR in step "%s": %s\n' "$STEP" "$*" >&2; exit 1; }

on_err() {
  local rc=$1 line=$2 cmd=$3
  if [[ $BASH_SUBSHELL -eq 0 ]]; then
    printf '[setup-rootless-lane] ERROR in step "%s": command failed (exit %s, line %s): %s\n' \
      "$STEP" "$rc" "$line" "$cmd" >&2
  fi
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

cleanup() {
  if [[ -n $TMP_DIR && -d $TMP_DIR ]]; then rm -rf "$TMP_DIR"; fi
}
trap cleanup EXIT

step() {
  STEP=$1
  log "== $STEP"
}

# Run a command quietly; on failure show its output and fail the step.
quiet() {
  local desc=$1 out
  shift
  out=$TMP_DIR/quiet.out
  if ! "$@" >"$out" 2>&1 </dev/null 9>&-; then
    tail -n 40 "$out" >&2 || true
    die "$desc failed: $*"
  fi
}

# Run a command as the lane's user, in its home, with a clean environment (nothing of
# root's CONTAINERS_CONF, XDG_* or PATH leaks in). fd 9 (the lock) is closed.
as_user() {
  # shellcheck disable=SC2016 # expanded by the user's shell
  (cd / && runuser -u "$LANE_USER" -- env -i \
    HOME="$LANE_HOME" USER="$LANE_USER" LOGNAME="$LANE_USER" SHELL=/bin/bash \
    PATH="$LANE_PATH" XDG_RUNTIME_DIR="$RUNTIME_DIR" LANG=C.UTF-8 \
    sh -c 'cd "$HOME" && exec "$@"' sh "$@" 9>&-)
}

# ---------------------------------------------------------------------------
# 0. preconditions
# ---------------------------------------------------------------------------
case ${1:-} in
  -h | --help)
    sed -n '2,/^$/p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  -v | --verbose) VERBOSE=1 ;;
  '') ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac
[[ $(id -u) -eq 0 ]] || die "must run as root"
[[ -r /etc/debian_version ]] || die "this script targets Debian 12"
export PATH=$LANE_PATH${PATH:+:$PATH}
TMP_DIR=$(mktemp -d /tmp/alca-rootless-setup.XXXXXX)
RUN_START=$SECONDS

mkdir -p "$CACHE_PARENT"
exec 9>"$CACHE_PARENT/.rootless-lane.lock"
if ! flock -w 600 9; then die "another setup-rootless-lane.sh run holds $CACHE_PARENT/.rootless-lane.lock"; fi

command -v podman >/dev/null || die "podman not found; run scripts/setup-test-env.sh first"
podman image exists "$IMAGE_NAME" 9>&- </dev/null ||
  die "root's Podman has no $IMAGE_NAME; run scripts/setup-test-env.sh first"

# ---------------------------------------------------------------------------
# 1. packages
# ---------------------------------------------------------------------------
step "1/5 programs"
# scripts/setup-test-env.sh installs them (uidmap slirp4netns fuse-overlayfs python3).
for c in newuidmap newgidmap slirp4netns fuse-overlayfs python3 runuser useradd usermod flock; do
  command -v "$c" >/dev/null || die "command '$c' not found; run scripts/setup-test-env.sh first"
done
# Rootless Podman maps the user's subordinate ids with the setuid helpers.
for c in newuidmap newgidmap; do
  [[ -u $(command -v "$c") ]] || die "$(command -v "$c") is not setuid root (needed by rootless Podman)"
done

# ---------------------------------------------------------------------------
# 2. user and subordinate ids
# ---------------------------------------------------------------------------
step "2/5 user $LANE_USER"
if ! getent passwd "$LANE_USER" >/dev/null; then
  quiet "useradd" useradd --system --user-group --create-home --home-dir "$LANE_HOME" \
    --shell /bin/bash --comment "alcatraz rootless-Podman test lane" "$LANE_USER"
  log "   created $LANE_USER"
fi
IFS=: read -r _ _ LANE_UID LANE_GID _ passwd_home passwd_shell < <(getent passwd "$LANE_USER")
[[ $passwd_home == "$LANE_HOME" ]] ||
  die "$LANE_USER exists with home $passwd_home, not $LANE_HOME (remove the user and re-run)"
[[ $passwd_shell == /bin/bash ]] || quiet "usermod --shell" usermod --shell /bin/bash "$LANE_USER"
[[ $LANE_UID -ne 0 ]] || die "$LANE_USER has uid 0"
if [[ ! -d $LANE_HOME ]]; then
  install -d -m 0750 -o "$LANE_UID" -g "$LANE_GID" "$LANE_HOME"
fi
[[ $(stat -c %u "$LANE_HOME") == "$LANE_UID" ]] || die "$LANE_HOME is not owned by $LANE_USER"

# Prints the first id >= SUBID_MIN past every range in the file (or SUBID_MIN).
next_free_subid() {
  local file=$1 next=$SUBID_MIN name start count
  [[ -f $file ]] || { echo "$next"; return; }
  while IFS=: read -r name start count; do
    [[ $start =~ ^[0-9]+$ && $count =~ ^[0-9]+$ ]] || continue
    if ((start + count > next)); then next=$((start + count)); fi
  done <"$file"
  echo "$next"
}
# Whether the user has a range of at least SUBID_COUNT ids (by name or by uid).
has_subids() {
  local file=$1 name start count
  [[ -f $file ]] || return 1
  while IFS=: read -r name start count; do
    if [[ ($name == "$LANE_USER" || $name == "$LANE_UID") && $count =~ ^[0-9]+$ ]] &&
      ((count >= SUBID_COUNT)); then
      return 0
    fi
  done <"$file"
  return 1
}
subids_changed=0
if ! has_subids /etc/subuid; then
  start=$(next_free_subid /etc/subuid)
  quiet "usermod --add-subuids" usermod --add-subuids "$start-$((start + SUBID_COUNT - 1))" "$LANE_USER"
  log "   /etc/subuid: $LANE_USER:$start:$SUBID_COUNT"
  subids_changed=1
fi
if ! has_subids /etc/subgid; then
  start=$(next_free_subid /etc/subgid)
  quiet "usermod --add-subgids" usermod --add-subgids "$start-$((start + SUBID_COUNT - 1))" "$LANE_USER"
  log "   /etc/subgid: $LANE_USER:$start:$SUBID_COUNT"
  subids_changed=1
fi
if ! has_subids /etc/subuid || ! has_subids /etc/subgid; then
  die "no subordinate id ranges for $LANE_USER in /etc/subuid and /etc/subgid"
fi

# ---------------------------------------------------------------------------
# 3. rootless Podman configuration
# ---------------------------------------------------------------------------
step "3/5 rootless podman configuration"
RUNTIME_DIR=/run/user/$LANE_UID
# What systemd-logind would provide: a private, user-owned runtime dir.
[[ -d /run/user ]] || install -d -m 0755 -o root -g root /run/user
if [[ -L $RUNTIME_DIR ]]; then rm -f "$RUNTIME_DIR"; fi
if [[ ! -d $RUNTIME_DIR ]]; then
  install -d -m 0700 -o "$LANE_UID" -g "$LANE_GID" "$RUNTIME_DIR"
  log "   created $RUNTIME_DIR"
elif [[ $(stat -c '%u:%g %a' "$RUNTIME_DIR") != "$LANE_UID:$LANE_GID 700" ]]; then
  chown "$LANE_UID:$LANE_GID" "$RUNTIME_DIR"
  chmod 0700 "$RUNTIME_DIR"
  log "   fixed owner/mode of $RUNTIME_DIR"
fi

# What udev's default rules would do (50-udev-default.rules: tun and fuse 0666).
# slirp4netns opens /dev/net/tun inside the user namespace, as the user.
for dev in /dev/net/tun /dev/fuse; do
  [[ -c $dev ]] || die "$dev is missing (kernel without tun/fuse, or no devtmpfs?)"
  if [[ $(stat -c %a "$dev") != 666 ]]; then
    chmod 0666 "$dev"
    log "   chmod 0666 $dev (was $(stat -c %a "$dev"))"
  fi
done

# See the header: without it the rootless network namespace hides /var/lib.
if [[ ! -d /var/lib/cni ]]; then
  install -d -m 0755 -o root -g root /var/lib/cni
  log "   created /var/lib/cni (empty; keeps /var/lib visible in Podman's rootless netns)"
fi

containers_conf_content() {
  cat <<'CONF'
# Written by alcatraz scripts/setup-rootless-lane.sh: rootless Podman without a
# systemd user session (no user D-Bus for the systemd cgroup manager, no journald).
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
}
storage_conf_content() { # $1 = native|fuse
  cat <<'CONF'
# Written by alcatraz scripts/setup-rootless-lane.sh (without it Podman 4.3 picks vfs).
[storage]
driver = "overlay"
CONF
  if [[ $1 == fuse ]]; then
    printf '\n[storage.options.overlay]\nmount_program = "%s"\n' "$(command -v fuse-overlayfs)"
  fi
}
conf_dir=$LANE_HOME/.config/containers
for d in "$LANE_HOME/.config" "$conf_dir"; do
  [[ -d $d && ! -L $d ]] || install -d -m 0755 -o "$LANE_UID" -g "$LANE_GID" "$d"
done
# $1 = file, stdin = content; rewrites the file only when it differs.
put_user_file() {
  local file=$1 content
  content=$(cat)
  if [[ -f $file && ! -L $file ]] && [[ $(cat "$file") == "$content" ]]; then
    return 0
  fi
  printf '%s\n' "$content" >"$TMP_DIR/conf"
  rm -f "$file"
  install -m 0644 -o "$LANE_UID" -g "$LANE_GID" "$TMP_DIR/conf" "$file"
  log "   wrote $file"
}
containers_conf_content | put_user_file "$conf_dir/containers.conf"
# Keep fuse-overlayfs when an earlier run had to fall back to it.
overlay_mode=native
if grep -qs '^mount_program' "$conf_dir/storage.conf"; then overlay_mode=fuse; fi
storage_conf_content "$overlay_mode" | put_user_file "$conf_dir/storage.conf"

# Storage created before the subordinate ids existed maps a single id; re-read them.
uid_map_lines() { as_user podman unshare cat /proc/self/uid_map 2>/dev/null | grep -c . || true; }
if [[ $subids_changed -eq 1 ]] || [[ $(uid_map_lines) -lt 2 ]]; then
  quiet "podman system migrate (as $LANE_USER)" as_user podman system migrate
  [[ $(uid_map_lines) -ge 2 ]] ||
    die "rootless Podman does not map $LANE_USER's subordinate ids (see 'podman unshare cat /proc/self/uid_map' as $LANE_USER)"
fi

info_err=$TMP_DIR/podman-info.err
# Prints rootless|cgroup manager|events logger|OCI runtime|graph driver; debug log in $info_err.
podman_info() {
  as_user podman --log-level=debug info --format \
    '{{.Host.Security.Rootless}}|{{.Host.CgroupManager}}|{{.Host.EventLogger}}|{{.Host.OCIRuntime.Name}}|{{.Store.GraphDriverName}}' \
    2>"$info_err"
}
# The user's storage only: its images and containers belong to this lane.
reset_storage() {
  quiet "podman system reset (as $LANE_USER)" as_user podman system reset --force
  log "   reset $LANE_USER's Podman storage ($1)"
}
info=$(podman_info) || info=
if [[ -z $info && $overlay_mode == native ]] && grep -qiE 'overlay|kernel does not support' "$info_err"; then
  warn "native rootless overlay does not work here; switching $LANE_USER to fuse-overlayfs"
  overlay_mode=fuse
  storage_conf_content fuse | put_user_file "$conf_dir/storage.conf"
  reset_storage "switched to fuse-overlayfs"
  info=$(podman_info) || info=
fi
if [[ -z $info ]]; then
  grep -v 'level=debug' "$info_err" >&2 || true
  die "'podman info' fails as $LANE_USER"
fi
IFS='|' read -r rootless cgroup_manager event_logger oci_runtime graph_driver <<<"$info"
if [[ $graph_driver != overlay ]]; then
  # The driver is fixed when the storage is created (e.g. vfs before storage.conf).
  reset_storage "it used $graph_driver"
  info=$(podman_info) || die "'podman info' fails as $LANE_USER after the reset"
  IFS='|' read -r rootless cgroup_manager event_logger oci_runtime graph_driver <<<"$info"
  [[ $graph_driver == overlay ]] || die "rootless podman still uses storage driver '$graph_driver'"
fi
[[ $rootless == true ]] || die "podman info as $LANE_USER says Rootless=$rootless, expected true"
[[ $cgroup_manager == cgroupfs ]] || die "rootless podman uses cgroup manager '$cgroup_manager', not cgroupfs from $conf_dir/containers.conf"
[[ $event_logger == file ]] || die "rootless podman uses events logger '$event_logger', not file from $conf_dir/containers.conf"
# The root drop-in (runc, ulimits) applies to rootless Podman too; step 5 proves it works.
if [[ -f $ROOT_DROPIN ]] && ! grep -F 'Merged system config' "$info_err" | grep -qF "$ROOT_DROPIN"; then
  warn "rootless podman did not read $ROOT_DROPIN"
fi
log "   rootless=$rootless cgroups=$cgroup_manager events=$event_logger runtime=$oci_runtime storage=$graph_driver ($overlay_mode)"

# ---------------------------------------------------------------------------
# 4. test image
# ---------------------------------------------------------------------------
step "4/5 image $IMAGE_NAME"
root_id=$(podman image inspect --format '{{.Id}}' "$IMAGE_NAME" 9>&- </dev/null) ||
  die "cannot inspect $IMAGE_NAME in root's Podman"
user_id=$(as_user podman image inspect --format '{{.Id}}' "$IMAGE_NAME" 2>/dev/null) || user_id=
if [[ $user_id == "$root_id" ]]; then
  log "   $LANE_USER already has $IMAGE_NAME (${root_id:0:12})"
else
  share=$(mktemp -d /tmp/alca-rootless-image.XXXXXX)
  chmod 0755 "$share"
  quiet "podman save (root)" podman save --format docker-archive -o "$share/image.tar" "$IMAGE_NAME"
  chmod 0644 "$share/image.tar"
  load_ok=1
  quiet_out=$TMP_DIR/load.out
  as_user podman load -i "$share/image.tar" >"$quiet_out" 2>&1 </dev/null || load_ok=0
  rm -rf "$share"
  if [[ $load_ok -eq 0 ]]; then
    tail -n 40 "$quiet_out" >&2 || true
    die "podman load as $LANE_USER failed"
  fi
  old_user_id=$user_id
  user_id=$(as_user podman image inspect --format '{{.Id}}' "$IMAGE_NAME" 2>/dev/null) || user_id=
  if [[ -n $old_user_id && $old_user_id != "$user_id" ]]; then
    # Drop the previous, now untagged, copy; ignore failures (e.g. in use).
    as_user podman image rm "$old_user_id" >/dev/null 2>&1 || true
  fi
  [[ -n $user_id ]] || die "$IMAGE_NAME missing in $LANE_USER's storage after podman load"
  [[ $user_id == "$root_id" ]] ||
    warn "$LANE_USER's $IMAGE_NAME has id ${user_id:0:12}, root's ${root_id:0:12}"
  log "   loaded $IMAGE_NAME into $LANE_USER's storage"
fi

# ---------------------------------------------------------------------------
# 5. checks
# ---------------------------------------------------------------------------
step "5/5 checks"
run_err=$TMP_DIR/run.err
# $@ = podman run arguments after `run --rm --pull=never`; prints the container's stdout.
user_run() {
  as_user podman run --rm --pull=never "$@" 2>"$run_err" </dev/null || {
    cat "$run_err" >&2
    die "'podman run --rm $*' fails as $LANE_USER"
  }
}
user_run "$IMAGE_NAME" true >/dev/null
# shellcheck disable=SC2016 # expanded by the container's shell
out=$(user_run "$IMAGE_NAME" sh -c 'echo "$(id -un) $(ulimit -n)"')
[[ $out == "root "* ]] || die "rootless container printed unexpected output: $out"
log "   $LANE_USER runs $IMAGE_NAME rootless (container user and nofile: $out)"
# A container on a network of its own, as alca creates one per project.
probe_net=alca-lane-probe
as_user podman network rm --force "$probe_net" >/dev/null 2>&1 || true
quiet "podman network create (as $LANE_USER)" as_user podman network create "$probe_net"
out=$(user_run --network "$probe_net" "$IMAGE_NAME" echo ok) || true
quiet "podman network rm (as $LANE_USER)" as_user podman network rm --force "$probe_net"
[[ $out == ok ]] || die "a container on a custom network printed '$out', not 'ok'"
log "   $LANE_USER runs $IMAGE_NAME on a network of its own"
log "OK: rootless lane ready in $((SECONDS - RUN_START)) s (user $LANE_USER, uid $LANE_UID, XDG_RUNTIME_DIR $RUNTIME_DIR)"
