#!/usr/bin/env bash
# Smoke-test the machine prepared by scripts/setup-test-env.sh (run it after).
#
#   - engines, Podman config, nft and mutagen versions
#   - every test image tag runs in Docker and Podman without any pull
#   - nft works (in a private table created and deleted here; never flushes)
#   - Mutagen: a local->local session, a docker:// session against a Docker
#     container and one against a Podman container (via MUTAGEN_DOCKER_PATH),
#     each with its own MUTAGEN_DATA_DIRECTORY; the daemons started here are
#     stopped with `mutagen daemon stop`, containers and temp dirs removed.
#
# Leaves nothing behind. Exit status 0 means every check passed.

set -Eeuo pipefail

readonly MUTAGEN_VERSION=0.18.1
readonly IMAGES=(localhost/alca-test/busybox:latest alpine:3.21 alpine:3.20 debian:bookworm-slim)
readonly APPLETS=(sh ash true false sleep env id uname chown chmod cat ls nc ip ping echo mkdir
  rm mv cp touch ln grep sed awk head tail wc find stat test '[' printf kill ps timeout date
  hostname dd tee sort uniq tr cut xargs basename dirname readlink realpath sync mkfifo whoami)

CHECK=init
TMP=
CONTAINERS_DOCKER=()
CONTAINERS_PODMAN=()
DATA_DIRS=()
NFT_TABLE=

ok()   { printf '[verify-test-env] ok: %s\n' "$*"; }
fail() { printf '[verify-test-env] FAILED (%s): %s\n' "$CHECK" "$*" >&2; exit 1; }
on_err() {
  if [[ $BASH_SUBSHELL -eq 0 ]]; then
    printf '[verify-test-env] FAILED (%s): command failed (exit %s, line %s): %s\n' "$CHECK" "$1" "$2" "$3" >&2
  fi
}
trap 'on_err $? $LINENO "$BASH_COMMAND"' ERR

# PIDs of `mutagen daemon run` processes whose MUTAGEN_DATA_DIRECTORY is $1.
daemon_pids() {
  local p
  for p in /proc/[0-9]*; do
    [[ -r $p/environ ]] || continue
    if tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qx run &&
      tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qxF "MUTAGEN_DATA_DIRECTORY=$1"; then
      echo "${p#/proc/}"
    fi
  done
}

cleanup() {
  local d c
  set +e
  trap - ERR
  for d in "${DATA_DIRS[@]}"; do
    MUTAGEN_DATA_DIRECTORY=$d MUTAGEN_DISABLE_AUTOSTART=1 timeout 20 mutagen sync terminate --all >/dev/null 2>&1
    MUTAGEN_DATA_DIRECTORY=$d MUTAGEN_DISABLE_AUTOSTART=1 timeout 20 mutagen daemon stop >/dev/null 2>&1
    # `daemon stop` does not wait; give our daemon a moment to exit.
    for _ in $(seq 1 50); do
      [[ -z $(daemon_pids "$d") ]] && break
      sleep 0.1
    done
    [[ -z $(daemon_pids "$d") ]] || echo "[verify-test-env] warning: mutagen daemon for $d still running" >&2
  done
  for c in "${CONTAINERS_DOCKER[@]}"; do docker rm -f "$c" >/dev/null 2>&1; done
  for c in "${CONTAINERS_PODMAN[@]}"; do podman rm -f -t 0 "$c" >/dev/null 2>&1; done
  [[ -n $NFT_TABLE ]] && nft delete table inet "$NFT_TABLE" 2>/dev/null
  [[ -n $TMP ]] && rm -rf "$TMP"
}
trap cleanup EXIT

[[ $(id -u) -eq 0 ]] || fail "must run as root"
# Short path: mutagen's daemon.sock lives under the data dir (sun_path limit).
TMP=$(mktemp -d /tmp/alca-v.XXXXXX)

# ---------------------------------------------------------------------------
CHECK=engines
docker info >/dev/null 2>&1 || fail "docker info fails (run scripts/setup-test-env.sh)"
ok "docker server $(docker version --format '{{.Server.Version}}')"
runtime=$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null)
[[ $runtime == runc ]] || fail "podman runtime is '$runtime', expected runc"
ok "podman $(podman version --format '{{.Client.Version}}'), runtime $runtime, network $(podman info --format '{{.Host.NetworkBackend}}' 2>/dev/null)"
ok "$(nft --version)"

CHECK=mutagen-install
[[ $(mutagen version) == "$MUTAGEN_VERSION" ]] || fail "mutagen version is not $MUTAGEN_VERSION"
target=$(readlink -f "$(command -v mutagen)")
[[ $(tar -tzf "$(dirname "$target")/mutagen-agents.tar.gz") == linux_amd64 ]] ||
  fail "bundle next to $target missing or has wrong entries"
ok "mutagen $(mutagen version) at $(command -v mutagen) -> $target, bundle entries: linux_amd64"

# ---------------------------------------------------------------------------
CHECK=images
# shellcheck disable=SC2016 # expanded in the container's shell
probe='for a in '"${APPLETS[*]//\[/\\[}"'; do command -v "$a" >/dev/null || echo "missing applet $a"; done
       [ "$(id -un)" = root ] || echo "id -un failed"
       [ "$(ulimit -n)" -gt 0 ] || echo "no nofile limit"
       [ -d /workspace ] && [ -d /root ] || echo "missing dirs"
       [ "$(stat -c %a /tmp)" = 1777 ] || echo "/tmp mode"
       echo done'
for engine in docker podman; do
  for img in "${IMAGES[@]}"; do
    out=$("$engine" run --rm --pull=never "$img" sh -c "$probe" 2>&1) || fail "$engine run --pull=never $img: $out"
    [[ $out == "done" ]] || fail "$engine $img: $out"
  done
  # default pull policy ("missing"): must resolve locally, a pull would fail
  out=$("$engine" run --rm alpine:3.21 true 2>&1) || fail "$engine run alpine:3.21 (default pull policy): $out"
  ok "$engine runs ${IMAGES[*]} (with --pull=never, and alpine:3.21 with the default policy)"
done

# ---------------------------------------------------------------------------
CHECK=nft
NFT_TABLE=alca_verify_$$
nft -f - <<EOF
table inet $NFT_TABLE {
  set probe4 { type ipv4_addr; flags interval; elements = { 10.213.0.0/24 } }
  chain forward_probe {
    type filter hook forward priority 0; policy accept;
    ip saddr @probe4 counter
  }
}
EOF
nft add element inet "$NFT_TABLE" probe4 '{ 10.214.0.0/24 }'
nft list table inet "$NFT_TABLE" | grep -q '10.214.0.0/24' || fail "element not added"
nft delete table inet "$NFT_TABLE"
NFT_TABLE=
ok "nft: created, extended and deleted table inet alca_verify_$$"

# ---------------------------------------------------------------------------
# Mutagen sessions. $1 = name, $2 = alpha dir, $3 = beta URL,
# $4 = command that prints a file from beta (gets a relative path),
# $5 = command that writes "back" to a file on beta (gets a relative path)
mutagen_roundtrip() {
  local name=$1 alpha=$2 beta=$3 read_beta=$4 write_beta=$5 out
  echo "hello $name" >"$alpha/from-alpha.txt"
  out=$(timeout 120 mutagen sync create --name="$name" "$alpha" "$beta" 2>&1 </dev/null) ||
    fail "sync create $name: $out"
  timeout 60 mutagen sync flush "$name" >/dev/null 2>&1 || fail "sync flush $name"
  [[ $($read_beta from-alpha.txt) == "hello $name" ]] || fail "$name: alpha->beta did not propagate"
  $write_beta from-beta.txt
  timeout 60 mutagen sync flush "$name" >/dev/null 2>&1 || fail "sync flush $name"
  [[ $(cat "$alpha/from-beta.txt" 2>/dev/null) == back ]] || fail "$name: beta->alpha did not propagate"
  out=$(mutagen sync list --template '{{range .}}{{.Status}}{{end}}' "$name")
  ok "mutagen session $name: both directions synced (status: $out)"
}

CHECK=mutagen-local
export MUTAGEN_DATA_DIRECTORY=$TMP/m1
DATA_DIRS+=("$MUTAGEN_DATA_DIRECTORY")
mkdir -p "$TMP/l-a" "$TMP/l-b"
read_local() { cat "$TMP/l-b/$1"; }
write_local() { echo back >"$TMP/l-b/$1"; }
mutagen_roundtrip local "$TMP/l-a" "$TMP/l-b" read_local write_local

CHECK=mutagen-docker
c=alca-verify-$$-docker
CONTAINERS_DOCKER+=("$c")
docker run -d --name "$c" alpine:3.21 sleep 600 >/dev/null
mkdir -p "$TMP/d-a"
read_docker() { docker exec "$c" cat "/workspace/p/$1"; }
write_docker() { docker exec "$c" sh -c "echo back > /workspace/p/$1"; }
mutagen_roundtrip docker "$TMP/d-a" "docker://$c/workspace/p" read_docker write_docker
docker exec "$c" test -x /root/.mutagen/agents/$MUTAGEN_VERSION/mutagen-agent ||
  fail "agent not installed in the container"
ok "agent installed in container at /root/.mutagen/agents/$MUTAGEN_VERSION/mutagen-agent"

CHECK=mutagen-podman
# Mutagen has no Podman transport: give its daemon a directory whose `docker`
# is podman (the daemon reads MUTAGEN_DOCKER_PATH, so it needs its own data dir).
mkdir -p "$TMP/podman-bin"
ln -s "$(command -v podman)" "$TMP/podman-bin/docker"
export MUTAGEN_DATA_DIRECTORY=$TMP/m2 MUTAGEN_DOCKER_PATH=$TMP/podman-bin
DATA_DIRS+=("$MUTAGEN_DATA_DIRECTORY")
p=alca-verify-$$-podman
CONTAINERS_PODMAN+=("$p")
podman run -d --name "$p" alpine:3.21 sleep 600 >/dev/null
mkdir -p "$TMP/p-a"
read_podman() { podman exec "$p" cat "/workspace/p/$1"; }
write_podman() { podman exec "$p" sh -c "echo back > /workspace/p/$1"; }
mutagen_roundtrip podman "$TMP/p-a" "docker://$p/workspace/p" read_podman write_podman
unset MUTAGEN_DOCKER_PATH

CHECK=cleanup
cleanup
trap - EXIT
for d in "${DATA_DIRS[@]}"; do
  [[ -z $(daemon_pids "$d") ]] || fail "mutagen daemon for $d did not stop"
done
ok "mutagen daemons stopped, containers and temp dirs removed"
echo "[verify-test-env] ALL CHECKS PASSED"
