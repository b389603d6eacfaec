"""The pairwise merge of two layers, exactly as upstream (AGD-033/034, reference §2.2).

Pure and total: `merge(base, overlay)` never fails and never removes a value (an unset or
empty overlay field keeps the base). Per field:

| field                               | rule                                         |
|-------------------------------------|----------------------------------------------|
| image, workdir, runtime, proxy      | overlay wins if set                          |
| workdir_exclude, network.ports      | overlay *replaces* if non-empty              |
| mounts, network.lan-access          | appended (base, then overlay)                |
| workdir_protect, workdir_unprotect  | appended (base, then overlay)                |
| resources.memory, resources.cpus    | each: overlay wins if set                    |
| envs                                | per key: overlay wins                        |
| caps                                | overlay replaces as a whole if it has entries|
| hooks.post_up, hooks.pre_down       | each: overlay wins if non-empty              |
| commands.up, commands.enter         | empty overlay keeps base; `append = true`    |
|                                     | on a non-empty base joins with a space and   |
|                                     | consumes the flag; otherwise overlay replaces|
|                                     | and keeps its flag                           |
"""

from __future__ import annotations

from alcatraz.config.layer import Command, Layer


def _merge_command(base: Command | None, overlay: Command | None) -> Command | None:
    if overlay is None or not overlay.command:
        return base
    if overlay.append and base is not None and base.command:
        return Command(f"{base.command} {overlay.command}", append=False)
    return overlay


def _shift(
    origin: dict[str, tuple[str, ...]], prefix: str, offset: int
) -> dict[str, tuple[str, ...]]:
    """Renumber `prefix[i]` keys by `offset`, for appended lists."""
    shifted: dict[str, tuple[str, ...]] = {}
    for key, files in origin.items():
        if key.startswith(prefix + "["):
            index = int(key[len(prefix) + 1 : key.index("]")])
            shifted[f"{prefix}[{index + offset}]"] = files
    return shifted


def merge(base: Layer, overlay: Layer) -> Layer:
    """`overlay` on top of `base`; neither is modified."""
    result = Layer()
    origin = dict(base.origin)

    def take(key: str) -> None:
        if key in overlay.origin:
            origin[key] = overlay.origin[key]

    for name, key in (
        ("image", "image"),
        ("workdir", "workdir"),
        ("runtime", "runtime"),
        ("proxy", "network.proxy"),
        ("memory", "resources.memory"),
        ("cpus", "resources.cpus"),
        ("post_up", "hooks.post_up"),
        ("pre_down", "hooks.pre_down"),
    ):
        value = getattr(overlay, name)
        if value:
            setattr(result, name, value)
            take(key)
        else:
            setattr(result, name, getattr(base, name))

    if overlay.host_ca is not None:
        result.host_ca = overlay.host_ca
        take("network.host-ca")
    else:
        result.host_ca = base.host_ca

    if overlay.workdir_exclude:
        result.workdir_exclude = overlay.workdir_exclude
        take("workdir_exclude")
    else:
        result.workdir_exclude = base.workdir_exclude

    if overlay.ports:
        result.ports = overlay.ports
        take("network.ports")
    else:
        result.ports = base.ports

    for name in ("workdir_protect", "workdir_unprotect"):
        setattr(result, name, getattr(base, name) + getattr(overlay, name))
        origin.update(_shift(overlay.origin, name, len(getattr(base, name))))

    result.mounts = base.mounts + overlay.mounts
    origin.update(_shift(overlay.origin, "mounts", len(base.mounts)))
    result.lan_access = base.lan_access + overlay.lan_access
    origin.update(_shift(overlay.origin, "network.lan-access", len(base.lan_access)))

    result.envs = {**base.envs, **overlay.envs}
    for name in overlay.envs:
        take(f"envs.{name}")

    if overlay.caps is not None and overlay.caps.has_entries:
        result.caps = overlay.caps
        take("caps")
    else:
        result.caps = base.caps

    for name, key in (("up", "commands.up"), ("enter", "commands.enter")):
        base_command: Command | None = getattr(base, name)
        overlay_command: Command | None = getattr(overlay, name)
        merged = _merge_command(base_command, overlay_command)
        setattr(result, name, merged)
        if merged is not base_command and key in overlay.origin:
            if merged is overlay_command:
                origin[key] = overlay.origin[key]
            else:  # appended: both files contributed
                origin[key] = base.origin.get(key, ()) + overlay.origin[key]

    result.origin = origin
    return result
