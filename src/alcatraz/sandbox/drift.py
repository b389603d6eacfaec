"""Drift: how the configuration differs from what the running container was built from.

Pure. `snapshot()` records the fields that shape a container (reference §3.4, plus caps and
runtime, which upstream compared but never displayed); `compare()` lists every difference as
a display line. Hooks run on the host, so they are not drift (upstream U4): a hook change
needs approval (`alcatraz.sandbox.trust`), not a rebuild.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alcatraz.config.expand import env_reference
from alcatraz.config.load import Config
from alcatraz.config.netgrammar import render_port
from alcatraz.printable import printable
from alcatraz.seccomp import config_needs_guard
from alcatraz.sources import replaced


def snapshot(config: Config, protected: Sequence[str] = ()) -> dict[str, Any]:
    """The drift-relevant part of a config, JSON-serialisable, stored at creation.

    `protected`: the paths made read-only inside (`alcatraz.protect.snapshot`).
    """
    return {
        "image": config.image,
        "workdir": config.workdir,
        "workdir_exclude": list(config.workdir_exclude),
        "runtime": config.runtime,
        "commands_up": config.up.command if config.up else "",
        "memory": config.memory or "",
        "cpus": config.cpus or 0,
        # The project mount is covered by the Workdir and Workdir exclude lines.
        "mounts": [[m.source, m.target, m.readonly, list(m.exclude)] for m in config.mounts],
        "envs": {name: env.value for name, env in sorted(config.envs.items())},
        "caps": {"drop": list(config.caps.drop), "add": list(config.caps.add)},
        "ports": [render_port(p) for p in config.ports],
        "setuid_guard": config_needs_guard(config),
        "host_ca": config.host_ca,
        "protected": list(protected),
    }


def _envs_changed(old: dict[str, str], new: dict[str, str]) -> bool:
    """Key set always counts; a value only when both sides are literals (AGD-019)."""
    if set(old) != set(new):
        return True
    for name, value in new.items():
        before = old[name]
        if env_reference(before) is None and env_reference(value) is None and before != value:
            return True
    return False


def _arrow(old: Any, new: Any) -> str:
    return f"{old or '(none)'} → {new or '(none)'}"


def compare(
    old: dict[str, Any], new: dict[str, Any], *, old_engine: str = "", new_engine: str = ""
) -> list[str]:
    """Display lines (without indentation) for every difference; empty when none."""
    lines: list[str] = []
    if old_engine and new_engine and old_engine != new_engine:
        lines.append(f"Runtime: {_arrow(old_engine, new_engine)}")
    if old.get("runtime") != new.get("runtime") and not lines:
        lines.append(f"Runtime setting: {_arrow(old.get('runtime'), new.get('runtime'))}")
    if old.get("image") != new.get("image"):
        lines.append(f"Image: {_arrow(old.get('image'), new.get('image'))}")
    if old.get("mounts") != new.get("mounts"):
        lines.append("Mounts: changed")
    if old.get("workdir") != new.get("workdir"):
        lines.append(f"Workdir: {_arrow(old.get('workdir'), new.get('workdir'))}")
    if old.get("workdir_exclude") != new.get("workdir_exclude"):
        lines.append("Workdir exclude: changed")
    if old.get("protected", []) != new.get("protected", []):
        lines.append("Protected paths: changed")
    if old.get("commands_up") != new.get("commands_up"):
        lines.append("Commands.up: changed")
    if old.get("memory") != new.get("memory"):
        lines.append(f"Resources.memory: {_arrow(old.get('memory'), new.get('memory'))}")
    if old.get("cpus") != new.get("cpus"):
        lines.append(f"Resources.cpus: {_arrow(old.get('cpus'), new.get('cpus'))}")
    if _envs_changed(old.get("envs", {}), new.get("envs", {})):
        lines.append("Envs: changed")
    if old.get("ports") != new.get("ports"):
        lines.append("Ports: changed")
    if old.get("caps") != new.get("caps"):
        old_caps, new_caps = old.get("caps", {}), new.get("caps", {})
        added = sorted(set(new_caps.get("add", [])) - set(old_caps.get("add", [])))
        removed = sorted(set(old_caps.get("add", [])) - set(new_caps.get("add", [])))
        detail = ", ".join([*(f"+{c}" for c in added), *(f"-{c}" for c in removed)]) or "changed"
        lines.append(f"Caps: {detail}")
    if old.get("setuid_guard", False) != new.get("setuid_guard", False):
        on_off = {True: "on", False: "off"}
        before, after = old.get("setuid_guard", False), new.get("setuid_guard", False)
        lines.append(f"Setuid guard: {on_off[bool(before)]} → {on_off[bool(after)]}")
    if old.get("host_ca", False) != new.get("host_ca", False):
        lines.append(f"Network.host-ca: {old.get('host_ca', False)} → {new.get('host_ca', False)}")
    return lines


def source_drift(
    recorded_pins: object, restart_policy: str, current: dict[str, list[int]]
) -> list[str]:
    """Drift lines for replaced workspace sources and an engine-driven restart policy."""
    lines = [
        f"Mount source ./{printable(path)}: replaced since the container was created"
        for path in replaced(recorded_pins, current)
    ]
    if restart_policy not in ("", "no"):
        lines.append(
            f"Restart policy: {printable(restart_policy)} → no "
            "(only 'alca up' may start the sandbox)"
        )
    return lines
