"""The network helper: what makes isolation rules survive a reboot, per platform.

- Linux (`native`): the live table is saved to `/etc/nftables.d/alcatraz/alcatraz.nft`,
  which `/etc/nftables.conf` includes, so `nftables.service` restores it at boot, before
  the engine restarts any container. Installing never reloads `nftables.conf` (distribution
  defaults start with `flush ruleset`, which would wipe the engines' own rules).
- Docker Desktop / OrbStack (`helper`): a privileged container with the host's PID and
  network namespaces (`alcatraz-network-helper`, restart=always) runs `nft` in the VM
  through `nsenter`; at start it reloads the saved table from `~/.alcatraz/nft/`.

Paths can be moved with ALCA_NFT_CONF / ALCA_NFT_DIR (tests do, to leave the machine's
own files alone).
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alcatraz.errors import AlcaError
from alcatraz.network.firewall import HELPER_NAME, Firewall
from alcatraz.proc import Runner

INCLUDE_TEMPLATE = 'include "{dir}/*.nft"'
RULES_FILE = "alcatraz.nft"
MARKER = ".managed-by-alcatraz"
HELPER_IMAGE_DEFAULT = "alpine:3.21"


@dataclass(frozen=True)
class NativePaths:
    conf: Path
    directory: Path

    @property
    def include_line(self) -> str:
        return INCLUDE_TEMPLATE.format(dir=self.directory)

    @property
    def rules(self) -> Path:
        return self.directory / RULES_FILE


def native_paths(environ: Mapping[str, str]) -> NativePaths:
    return NativePaths(
        Path(environ.get("ALCA_NFT_CONF", "/etc/nftables.conf")),
        Path(environ.get("ALCA_NFT_DIR", "/etc/nftables.d/alcatraz")),
    )


def native_installed(paths: NativePaths) -> bool:
    if not paths.directory.is_dir():
        return False
    try:
        text = paths.conf.read_text(encoding="utf-8")
    except OSError:
        return False
    return paths.include_line in (line.strip() for line in text.splitlines())


def _write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(mode)
    tmp.replace(path)


def native_install(paths: NativePaths) -> list[str]:
    """Create the rules directory and the include line; returns what was done."""
    done: list[str] = []
    if not paths.directory.is_dir():
        paths.directory.mkdir(parents=True, mode=0o755)
        done.append(f"Created {paths.directory}")
    marker = paths.directory / MARKER
    if not marker.exists():
        marker.write_text("# Rules in this directory are written by alcatraz (alca).\n")
    try:
        text = paths.conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = "#!/usr/sbin/nft -f\n"
    if paths.include_line not in (line.strip() for line in text.splitlines()):
        if text and not text.endswith("\n"):
            text += "\n"
        text += f"\n# alcatraz: sandbox isolation rules, restored at boot\n{paths.include_line}\n"
        _write_atomic(paths.conf, text, mode=0o755 if not paths.conf.exists() else 0o644)
        done.append(f"Added the include line to {paths.conf}")
    return done


def native_uninstall(paths: NativePaths) -> list[str]:
    done: list[str] = []
    try:
        text = paths.conf.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    if paths.include_line in text:
        lines = [
            line
            for line in text.splitlines()
            if line.strip()
            not in (paths.include_line, "# alcatraz: sandbox isolation rules, restored at boot")
        ]
        _write_atomic(paths.conf, "\n".join(lines).rstrip("\n") + "\n")
        done.append(f"Removed the include line from {paths.conf}")
    if paths.directory.is_dir():
        for child in paths.directory.iterdir():
            if child.is_file() and (child.suffix == ".nft" or child.name == MARKER):
                child.unlink()
        try:
            paths.directory.rmdir()
            done.append(f"Removed {paths.directory}")
        except OSError:
            done.append(f"Left {paths.directory} (it holds files alcatraz did not write)")
    return done


#: Runtime-only sets: the seen addresses, the addresses allowed names resolved to and the
#: egress daemon's heartbeat. Not saved: after a boot nothing passes until the daemon runs.
_SEEN_SET = re.compile(r"^\s*set p_\w+_(seen[46]|e[ap][46]|live) \{\s*$")


def _without_seen_elements(dump: str) -> str:
    """Drop the `elements = {...}` of the per-project runtime sets only (seen addresses, egress
    addresses and heartbeat, with expiry times); every other element (dispatch maps,
    bridges, the host's LANs) is kept."""
    out: list[str] = []
    in_seen = in_elements = False
    for line in dump.splitlines(keepends=True):
        stripped = line.strip()
        if in_elements:
            if stripped.endswith("}"):
                in_elements = False
            continue
        if _SEEN_SET.match(line):
            in_seen = True
        elif in_seen and stripped.startswith("elements = {"):
            in_elements = not stripped.endswith("}")
            continue
        elif in_seen and stripped == "}":
            in_seen = False
        out.append(line)
    return "".join(out)


def persistable(dump: str) -> str:
    """The saved table: idempotent to load, without runtime-only state (seen addresses)."""
    body = _without_seen_elements(dump)
    return (
        "#!/usr/sbin/nft -f\n"
        "# Written by alcatraz: the isolation rules of every sandbox, restored at boot.\n"
        "table inet alcatraz\n"
        "delete table inet alcatraz\n" + body
    )


def save(fw: Firewall, path: Path) -> None:
    """Write the live table to `path` (removing the file when there is no table)."""
    if not fw.table_exists():
        path.unlink(missing_ok=True)
        return
    _write_atomic(path, persistable(fw.dump()))


# -- the helper container (Docker Desktop / OrbStack; testable on Linux) --------------------


def helper_rules_dir(home: Path) -> Path:
    return home / "nft"


def helper_run_argv(engine: str, home: Path, environ: Mapping[str, str]) -> list[str]:
    """`docker run` of the helper: host PID and network namespaces, restarts with the VM."""
    image = environ.get("ALCA_HELPER_IMAGE", HELPER_IMAGE_DEFAULT)
    privilege = shlex.split(environ.get("ALCA_HELPER_PRIVILEGE_ARGS", "--privileged"))
    target = environ.get("ALCA_HELPER_TARGET_PID", "1")
    script = (
        # Restore the saved table inside the VM, then idle until stopped. The redirect opens
        # the file in the helper's mount namespace, before nsenter switches to the VM's.
        f"f=/rules/{RULES_FILE}; "
        f'if [ -f "$f" ]; then nsenter -t {target} -m -u -n -i nft -f /dev/stdin < "$f"; fi; '
        "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"
    )
    return [
        engine, "run", "-d", "--name", HELPER_NAME, "--restart=always",
        "--pid=host", "--net=host", *privilege,
        "--label", "alca.helper=1",
        "-v", f"{helper_rules_dir(home)}:/rules:ro",
        "--", image, "sh", "-c", script,
    ]  # fmt: skip


def helper_running(runner: Runner, engine: str) -> bool:
    result = runner.run(
        [
            engine,
            "inspect",
            "--format",
            '{{.State.Running}} {{index .Config.Labels "alca.helper"}}',
            HELPER_NAME,
        ],
        timeout=20,
    )
    # The label tells ours from the Go tool's container of the same name.
    return result.ok and result.stdout.split() == ["true", "1"]


def helper_install(runner: Runner, engine: str, home: Path, environ: Mapping[str, str]) -> None:
    helper_rules_dir(home).mkdir(parents=True, exist_ok=True)
    runner.run([engine, "rm", "-f", HELPER_NAME], timeout=60)
    result = runner.run(helper_run_argv(engine, home, environ), timeout=120)
    if not result.ok:
        raise AlcaError(
            f"could not start the network helper container: {result.stderr.strip()}",
            hint="Docker Desktop: disable Enhanced Container Isolation (privileged containers "
            "are needed), or use OrbStack",
        )
    if not helper_running(runner, engine):
        raise AlcaError("the network helper container did not stay running")


def helper_uninstall(runner: Runner, engine: str) -> None:
    runner.run([engine, "rm", "-f", HELPER_NAME], timeout=60)
