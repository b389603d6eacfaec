#!/usr/bin/env bash
# A real alcatraz demo on a fresh Debian 12 machine (as root): install, start a sandbox,
# show its isolation, tear down. Nothing is left behind except the engines and images
# that scripts/setup-test-env.sh installs.
#
#   sudo ./scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

[[ $(id -u) -eq 0 ]] || { echo "run as root (it installs Docker and manages nftables)" >&2; exit 1; }

say "1. Install the engines, nftables and a local image (no registry needed)"
bash scripts/setup-test-env.sh >/tmp/alca-demo-setup.log 2>&1 || { cat /tmp/alca-demo-setup.log; exit 1; }
echo "ready (log: /tmp/alca-demo-setup.log)"

say "2. Install alca into a virtualenv"
python3 -m venv "$repo/.venv"
"$repo/.venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$repo"
export PATH="$repo/.venv/bin:$PATH"
run alca --version

demo=$(mktemp -d /tmp/alca-demo.XXXXXX)
# Keep the demo's state and persisted rules out of the machine's own files.
export ALCA_HOME="$demo/home" ALCA_NFT_CONF="$demo/nftables.conf" ALCA_NFT_DIR="$demo/nftables.d"
project="$demo/project"
listener=""
cleanup() {
  cd "$project" 2>/dev/null && alca down -q >/dev/null 2>&1 || true
  [[ -n $listener ]] && kill "$listener" 2>/dev/null || true
  rm -rf "$demo"
}
trap cleanup EXIT

say "3. A project with a sandbox configuration"
mkdir -p "$project/src"
cd "$project"
echo 'print("hello from the project")' > src/app.py
cat > .alca.toml <<'TOML'
image = "alpine:3.21"
runtime = "docker"

[commands]
up = "echo preparing the sandbox"

[resources]
memory = "512m"
cpus = 1
TOML
run cat .alca.toml

say "4. Approve the configuration, install the network helper, start the sandbox"
run alca trust --yes >/dev/null
run alca network-helper install --yes
run alca up

say "5. Inside: only the project, minimal capabilities"
run alca run sh -c 'pwd; ls /workspace; id'
run alca run grep -E 'CapEff|NoNewPrivs' /proc/self/status
echo "(CapEff 00000000000000eb = CHOWN DAC_OVERRIDE FOWNER KILL SETGID SETUID only)"

say "6. Names resolve inside (through the project's own resolver on the gateway)"
run alca run nslookup deb.debian.org
run alca status

say "7. The agent cannot rewrite its own configuration, nor plant a setuid program"
if alca run sh -c 'echo "[hooks]" >> /workspace/.alca.toml' 2>&1; then
  echo "UNEXPECTED: the config was writable" >&2; exit 1
fi

echo "a setuid-root program for the host? (uid 0 inside is uid 0 on the host)"
if alca run sh -c 'cp /bin/busybox /workspace/rootshell && chmod 4755 /workspace/rootshell' 2>&1; then
  echo "UNEXPECTED: the setuid bit was set" >&2; exit 1
fi
rm -f rootshell

say "8. The host's own services are out of reach"
python3 -c '
import socket, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 19099)); s.listen(); time.sleep(60)' &
listener=$!
sleep 0.5
gateway=$(alca status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["isolation"]["gateway"])')
echo "a service listens on this host, port 19099; the sandbox's gateway is $gateway"
if alca run sh -c "echo hi | nc -w 2 $gateway 19099"; then
  echo "UNEXPECTED: the host service was reachable" >&2; exit 1
fi
echo "blocked, as it should be"
run alca net log

say "9. Tear down"
run alca down
echo
echo "Demo finished: the sandbox, its network and its rules are gone."
