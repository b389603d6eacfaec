"""Linux capability names: validated, upper-cased, `CAP_` removed, typos suggested."""

from __future__ import annotations

from typing import Final

from alcatraz.config import model
from alcatraz.config.values import Caps
from alcatraz.errors import ConfigError, quote

#: Every capability Linux knows (capabilities(7)), for typo detection.
LINUX_CAPS: Final = frozenset(
    [
        "AUDIT_CONTROL",
        "AUDIT_READ",
        "AUDIT_WRITE",
        "BLOCK_SUSPEND",
        "BPF",
        "CHECKPOINT_RESTORE",
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "IPC_LOCK",
        "IPC_OWNER",
        "KILL",
        "LEASE",
        "LINUX_IMMUTABLE",
        "MAC_ADMIN",
        "MAC_OVERRIDE",
        "MKNOD",
        "NET_ADMIN",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_RAW",
        "PERFMON",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYSLOG",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_CHROOT",
        "SYS_MODULE",
        "SYS_NICE",
        "SYS_PACCT",
        "SYS_PTRACE",
        "SYS_RAWIO",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "WAKE_ALARM",
    ]
)


def normalise_cap(key: str, name: str) -> str:
    """Upper-case, without `CAP_`; unknown names are errors with a suggestion."""
    import difflib

    if not isinstance(name, str) or not name.strip():
        raise ConfigError("capability name must not be empty", key=key, hint='e.g. "NET_RAW"')
    cap = name.strip().upper()
    cap = cap.removeprefix("CAP_")
    if cap != "ALL" and cap not in LINUX_CAPS:
        close = difflib.get_close_matches(cap, sorted(LINUX_CAPS), n=1)
        raise ConfigError(
            f"unknown capability {quote(name)}",
            key=key,
            hint=(f"did you mean {close[0]}? " if close else "")
            + "see capabilities(7) for the names (without the CAP_ prefix)",
        )
    return cap


def _unique(items: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def normalise_caps(raw: list[str] | model.CapsSpec) -> Caps:
    if isinstance(raw, list):
        extras = [normalise_cap(f"caps[{i}]", c) for i, c in enumerate(raw)]
        if "ALL" in extras:
            raise ConfigError(
                'adding "ALL" capabilities would give the agent full root power',
                key="caps",
                hint='list the capabilities you need, or use caps = { add = ["ALL"] } '
                "if you really mean it",
            )
        return Caps(drop=("ALL",), add=_unique([*model.DEFAULT_CAPS, *extras]))
    drop = [normalise_cap(f"caps.drop[{i}]", c) for i, c in enumerate(raw.drop)]
    add = [normalise_cap(f"caps.add[{i}]", c) for i, c in enumerate(raw.add)]
    return Caps(drop=_unique(drop), add=_unique(add))
