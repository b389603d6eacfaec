"""Render the effective configuration, each value with the file it came from.

Pure: `alca config show` prints what these return.
"""

from __future__ import annotations

import json
from typing import Any

from alcatraz.config.layer import Command
from alcatraz.config.load import Config
from alcatraz.config.netgrammar import render_port
from alcatraz.config.protected import DEFAULT_PROTECTED

DEFAULT = "default"


def _command(command: Command | None) -> str | None:
    return command.command if command else None


def document(config: Config) -> dict[str, Any]:
    """The effective configuration in `.alca.toml` shape (JSON-friendly)."""
    doc: dict[str, Any] = {
        "image": config.image,
        "workdir": config.workdir,
        "workdir_exclude": list(config.workdir_exclude),
        "workdir_protect": list(config.workdir_protect),
        "workdir_unprotect": list(config.workdir_unprotect),
        "runtime": config.runtime,
        "commands": {
            k: v
            for k, v in (("up", _command(config.up)), ("enter", _command(config.enter)))
            if v is not None
        },
        "mounts": [
            {
                "source": m.source,
                "target": m.target,
                "readonly": m.readonly,
                "exclude": list(m.exclude),
            }
            for m in config.mounts
        ],
        "resources": {
            k: v for k, v in (("memory", config.memory), ("cpus", config.cpus)) if v is not None
        },
        "envs": {
            name: {"value": env.value, "override_on_enter": env.override_on_enter}
            for name, env in config.envs.items()
        },
        "network": {
            "lan-access": list(config.lan_access),
            "ports": [render_port(p) for p in config.ports],
            **({"proxy": config.proxy_text} if config.proxy_text else {}),
            "host-ca": config.host_ca,
        },
        "caps": {"drop": list(config.caps.drop), "add": list(config.caps.add)},
        "hooks": {
            k: v for k, v in (("post_up", config.post_up), ("pre_down", config.pre_down)) if v
        },
    }
    return doc


def origins(config: Config) -> dict[str, str]:
    """Key path -> where its value came from ("default" when no file set it)."""
    result = dict.fromkeys(
        (
            "image",
            "workdir",
            "workdir_exclude",
            "runtime",
            "caps",
            "network.ports",
        ),
        DEFAULT,
    )
    result.update({f"envs.{name}": DEFAULT for name in config.envs})
    result.update({key: ", ".join(files) for key, files in config.origin.items()})
    return result


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {_toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(type(value))


def _key(name: str) -> str:
    bare = name.replace("_", "").replace("-", "").isalnum() and name.isascii()
    return name if bare else json.dumps(name)


def render_text(config: Config) -> str:
    """TOML text of the effective config with `# from <file>` comments."""
    doc = document(config)
    origin = config.origin
    lines = [
        f"# Effective configuration of {config.project_root}",
        "# Files, in load order: " + ", ".join(str(f) for f in config.files),
        "",
    ]

    def source(key: str) -> str:
        files = origin.get(key)
        return ", ".join(files) if files else DEFAULT

    def emit(key: str, name: str, value: Any, origin_key: str | None = None) -> None:
        lines.append(f"{_key(name)} = {_toml_value(value)}  # {source(origin_key or key)}")

    for name in ("image", "workdir", "workdir_exclude", "runtime"):
        emit(name, name, doc[name])
    lines.append("# read-only inside by default: " + ", ".join(DEFAULT_PROTECTED))
    for name in ("workdir_protect", "workdir_unprotect"):
        if not doc[name]:
            lines.append(f"{name} = []  # {DEFAULT}")
            continue
        lines.append(f"{name} = [")
        for i, path in enumerate(doc[name]):
            lines.append(f"  {_toml_value(path)},  # {source(f'{name}[{i}]')}")
        lines.append("]")
    if config.mounts:
        lines.append("mounts = [")
        for i, mount in enumerate(doc["mounts"]):
            lines.append(f"  {_toml_value(mount)},  # {source(f'mounts[{i}]')}")
        lines.append("]")
    emit("caps", "caps", doc["caps"])
    for table in ("commands", "resources", "hooks"):
        if doc[table]:
            lines += ["", f"[{table}]"]
            for name, value in doc[table].items():
                emit(f"{table}.{name}", name, value)
    lines += ["", "[network]"]
    if config.lan_access:
        lines.append("lan-access = [")
        for i, rule in enumerate(config.lan_access):
            lines.append(f"  {_toml_value(rule)},  # {source(f'network.lan-access[{i}]')}")
        lines.append("]")
    else:
        lines.append("lan-access = []  # default: no LAN access")
    emit("network.ports", "ports", doc["network"]["ports"])
    if config.proxy_text:
        emit("network.proxy", "proxy", config.proxy_text)
    emit("network.host-ca", "host-ca", config.host_ca)
    lines += ["", "[envs]"]
    for name, env in doc["envs"].items():
        emit(f"envs.{name}", name, env)
    return "\n".join(lines) + "\n"
